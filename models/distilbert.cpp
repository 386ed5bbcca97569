#include "models/distilbert.hpp"

#include <filesystem>
#include <limits>

#include "core/array.hpp"
#include "io/model_config.hpp"
#include "io/safetensors.hpp"
#include "models/checkpoint.hpp"
#include "models/hf_weights.hpp"

namespace attnlens {

namespace fs = std::filesystem;

DistilBertClassifier DistilBertClassifier::load(const std::string& path, const torch::Device& device) {
  const fs::path weights = resolve_weights_path(path);
  const SafetensorsFile file = SafetensorsFile::open(weights.string());
  const HfWeights w(file, weights.string(), "embeddings.word_embeddings.weight", {"pre_classifier.", "classifier."});

  DistilBertClassifier m;
  TextClassifierConfig& c = m.config_;
  c.family = "distilbert";
  c.naming = w.prefix().empty() ? "hf-bare" : "hf";
  const auto word_shape = w.shape_of("embeddings.word_embeddings.weight");
  if (word_shape.size() != 2) throw InputError(weights.string() + ": word embeddings must be [V, D]");
  c.vocab_size = static_cast<int>(word_shape[0]);
  c.hidden_size = static_cast<int>(word_shape[1]);
  c.max_positions = static_cast<int>(w.shape_of("embeddings.position_embeddings.weight")[0]);
  c.type_vocab_size = 0;
  c.num_layers = w.count_layers("transformer.layer.");
  if (c.num_layers == 0) throw InputError(weights.string() + ": no transformer layers found");
  c.intermediate_size = static_cast<int>(w.shape_of("transformer.layer.0.ffn.lin1.weight")[0]);
  c.num_labels = static_cast<int>(w.shape_of("classifier.weight")[0]);
  c.num_heads = c.hidden_size % 64 == 0 ? c.hidden_size / 64 : 0;
  // Hard-coded in Hugging Face's modeling_distilbert.py (no config key): eps 1e-12, and masked keys filled with
  // the float minimum.
  c.layer_norm_eps = 1e-12;
  c.mask_value = std::numeric_limits<float>::lowest();

  const fs::path config_path = weights.parent_path() / "config.json";
  if (const auto j = read_config_json(config_path.string())) {
    DistilBertConfigKeys k{c.num_heads, c.hidden_act, c.labels, c.vocab_size, c.hidden_size, c.num_layers,
                           c.intermediate_size};
    read_distilbert_config_keys(*j, k, config_path.string());
    c.num_heads = k.num_heads;
    c.hidden_act = k.activation;
    c.labels = std::move(k.labels);
  }
  m.check_config(weights.string(), config_path.string());
  m.score_form_ = ScoreForm::ScaleQuery;

  const std::int64_t D = c.hidden_size, F = c.intermediate_size;
  m.word_emb_ = w.get("embeddings.word_embeddings.weight", {c.vocab_size, D});
  m.pos_emb_ = w.get("embeddings.position_embeddings.weight", {c.max_positions, D});
  m.emb_ln_w_ = w.get("embeddings.LayerNorm.weight", {D});
  m.emb_ln_b_ = w.get("embeddings.LayerNorm.bias", {D});
  m.layers_ = read_encoder_layers(w, distilbert_layer_names(), c.num_layers, D, F);
  m.pre_w_ = w.get("pre_classifier.weight", {D, D});
  m.pre_b_ = w.get("pre_classifier.bias", {D});
  m.cls_w_ = w.get("classifier.weight", {c.num_labels, D});
  m.cls_b_ = w.get("classifier.bias", {c.num_labels});
  m.to_device(device, {&m.word_emb_, &m.pos_emb_, &m.pre_w_, &m.pre_b_, &m.cls_w_, &m.cls_b_});
  return m;
}

torch::Tensor DistilBertClassifier::embed(const TextBatch& batch) const {
  check_batch(batch);
  // Positions 0..T-1 whatever the padding (MODELS.md D.2).
  const auto positions = torch::arange(batch.length(), torch::TensorOptions().dtype(torch::kInt64).device(device_));
  return torch::embedding(word_emb_, batch.input_ids.to(device_)) + torch::embedding(pos_emb_, positions);
}

torch::Tensor DistilBertClassifier::word_embeddings(const TextBatch& batch) const {
  check_batch(batch);
  return torch::embedding(word_emb_, batch.input_ids.to(device_));
}

torch::Tensor DistilBertClassifier::head(const torch::Tensor& hidden, const ForwardRules& rules) const {
  const auto pre =
      rules.activation(rules.linear(hidden.select(1, 0), pre_w_, pre_b_, LinearSite::Head), Activation::Relu);
  return rules.linear(pre, cls_w_, cls_b_, LinearSite::Head);
}

}  // namespace attnlens
