#include "models/bert.hpp"

#include <filesystem>

#include "core/array.hpp"
#include "io/model_config.hpp"
#include "io/safetensors.hpp"
#include "models/checkpoint.hpp"
#include "models/hf_weights.hpp"

namespace attnlens {

namespace fs = std::filesystem;

BertClassifier BertClassifier::load(const std::string& path, const torch::Device& device) {
  const fs::path weights = resolve_weights_path(path);
  const SafetensorsFile file = SafetensorsFile::open(weights.string());
  // Hugging Face names with or without the "bert." prefix (BertForSequenceClassification vs a bare BertModel saved
  // with a classifier), and the legacy LayerNorm.gamma/beta spelling of TensorFlow-converted checkpoints.
  const HfWeights w(file, weights.string(), "embeddings.word_embeddings.weight", {"classifier."});

  BertClassifier m;
  TextClassifierConfig& c = m.config_;
  c.family = "bert";
  c.naming = w.legacy() ? "hf-legacy" : "hf";
  const auto word_shape = w.shape_of("embeddings.word_embeddings.weight");
  if (word_shape.size() != 2) throw InputError(weights.string() + ": word embeddings must be [V, D]");
  c.vocab_size = static_cast<int>(word_shape[0]);
  c.hidden_size = static_cast<int>(word_shape[1]);
  c.max_positions = static_cast<int>(w.shape_of("embeddings.position_embeddings.weight")[0]);
  c.type_vocab_size = static_cast<int>(w.shape_of("embeddings.token_type_embeddings.weight")[0]);
  c.num_layers = w.count_layers("encoder.layer.");
  if (c.num_layers == 0) throw InputError(weights.string() + ": no encoder layers found");
  c.intermediate_size = static_cast<int>(w.shape_of("encoder.layer.0.intermediate.dense.weight")[0]);
  if (!w.has("classifier.weight"))
    throw InputError(weights.string() + ": missing tensor 'classifier.weight' (a sequence classifier is needed)");
  c.num_labels = static_cast<int>(w.shape_of("classifier.weight")[0]);
  c.num_heads = c.hidden_size % 64 == 0 ? c.hidden_size / 64 : 0;

  const fs::path config_path = weights.parent_path() / "config.json";
  if (const auto j = read_config_json(config_path.string())) {
    BertConfigKeys k{c.num_heads, c.layer_norm_eps, c.hidden_act, c.mask_value, c.labels,
                     c.vocab_size, c.hidden_size, c.num_layers};
    read_bert_config_keys(*j, k, config_path.string());
    c.num_heads = k.num_heads;
    c.layer_norm_eps = k.layer_norm_eps;
    c.hidden_act = k.hidden_act;
    c.mask_value = k.mask_value;
    c.labels = std::move(k.labels);
  }
  m.check_config(weights.string(), config_path.string());

  const std::int64_t D = c.hidden_size, F = c.intermediate_size;
  m.word_emb_ = w.get("embeddings.word_embeddings.weight", {c.vocab_size, D});
  m.pos_emb_ = w.get("embeddings.position_embeddings.weight", {c.max_positions, D});
  m.type_emb_ = w.get("embeddings.token_type_embeddings.weight", {c.type_vocab_size, D});
  m.emb_ln_w_ = w.get("embeddings.LayerNorm.weight", {D});
  m.emb_ln_b_ = w.get("embeddings.LayerNorm.bias", {D});
  m.layers_ = read_encoder_layers(w, bert_layer_names(), c.num_layers, D, F);
  m.pooler_w_ = w.get("pooler.dense.weight", {D, D});
  m.pooler_b_ = w.get("pooler.dense.bias", {D});
  m.cls_w_ = w.get("classifier.weight", {c.num_labels, D});
  m.cls_b_ = w.get("classifier.bias", {c.num_labels});
  m.to_device(device, {&m.word_emb_, &m.pos_emb_, &m.type_emb_, &m.pooler_w_, &m.pooler_b_, &m.cls_w_, &m.cls_b_});
  return m;
}

torch::Tensor BertClassifier::embed(const TextBatch& batch) const {
  check_batch(batch);
  const auto T = batch.length();
  const auto positions = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(device_));
  return torch::embedding(word_emb_, batch.input_ids.to(device_)) + torch::embedding(pos_emb_, positions) +
         torch::embedding(type_emb_, batch.token_type_ids.to(device_));
}

torch::Tensor BertClassifier::word_embeddings(const TextBatch& batch) const {
  check_batch(batch);
  return torch::embedding(word_emb_, batch.input_ids.to(device_));
}

torch::Tensor BertClassifier::head(const torch::Tensor& hidden, const ForwardRules& rules) const {
  const auto pooled =
      rules.activation(rules.linear(hidden.select(1, 0), pooler_w_, pooler_b_, LinearSite::Head), Activation::Tanh);
  return rules.linear(pooled, cls_w_, cls_b_, LinearSite::Head);
}

}  // namespace attnlens
