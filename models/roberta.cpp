#include "models/roberta.hpp"

#include <filesystem>
#include <limits>

#include "core/array.hpp"
#include "io/model_config.hpp"
#include "io/safetensors.hpp"
#include "models/checkpoint.hpp"
#include "models/hf_weights.hpp"

namespace attnlens {

namespace fs = std::filesystem;

RobertaClassifier RobertaClassifier::load(const std::string& path, const torch::Device& device) {
  const fs::path weights = resolve_weights_path(path);
  const SafetensorsFile file = SafetensorsFile::open(weights.string());
  const HfWeights w(file, weights.string(), "embeddings.word_embeddings.weight", {"classifier."});

  RobertaClassifier m;
  TextClassifierConfig& c = m.config_;
  c.family = "roberta";
  c.naming = w.prefix().empty() ? "hf-bare" : "hf";
  const auto word_shape = w.shape_of("embeddings.word_embeddings.weight");
  if (word_shape.size() != 2) throw InputError(weights.string() + ": word embeddings must be [V, D]");
  c.vocab_size = static_cast<int>(word_shape[0]);
  c.hidden_size = static_cast<int>(word_shape[1]);
  const int position_rows = static_cast<int>(w.shape_of("embeddings.position_embeddings.weight")[0]);
  c.type_vocab_size = static_cast<int>(w.shape_of("embeddings.token_type_embeddings.weight")[0]);
  c.num_layers = w.count_layers("encoder.layer.");
  if (c.num_layers == 0) throw InputError(weights.string() + ": no encoder layers found");
  c.intermediate_size = static_cast<int>(w.shape_of("encoder.layer.0.intermediate.dense.weight")[0]);
  c.num_labels = static_cast<int>(w.shape_of("classifier.out_proj.weight")[0]);
  c.num_heads = c.hidden_size % 64 == 0 ? c.hidden_size / 64 : 0;
  // Hugging Face now masks padding keys with the float minimum (older versions: -10000).
  c.mask_value = std::numeric_limits<float>::lowest();
  int pad_token_id = 1;

  const fs::path config_path = weights.parent_path() / "config.json";
  if (const auto j = read_config_json(config_path.string())) {
    BertConfigKeys k{c.num_heads,  c.layer_norm_eps, c.hidden_act,   c.mask_value, c.labels,
                     c.vocab_size, c.hidden_size,    c.num_layers, pad_token_id};
    read_bert_config_keys(*j, k, config_path.string());
    c.num_heads = k.num_heads;
    c.layer_norm_eps = k.layer_norm_eps;
    c.hidden_act = k.hidden_act;
    c.mask_value = k.mask_value;
    c.labels = std::move(k.labels);
    pad_token_id = k.pad_token_id;
  }
  m.check_config(weights.string(), config_path.string());
  m.padding_idx_ = pad_token_id;
  // Real tokens take positions padding_idx + 1 .. padding_idx + T (MODELS.md E.2): 514 rows hold 512 tokens.
  c.max_positions = position_rows - pad_token_id - 1;
  if (c.max_positions < 1)
    throw InputError(weights.string() + ": " + std::to_string(position_rows) +
                     " position embeddings leave no position for a token after the padding index " +
                     std::to_string(pad_token_id));
  if (pad_token_id >= c.vocab_size)
    throw InputError(config_path.string() + ": pad_token_id " + std::to_string(pad_token_id) +
                     " is outside the vocabulary of " + std::to_string(c.vocab_size));

  const std::int64_t D = c.hidden_size, F = c.intermediate_size;
  m.word_emb_ = w.get("embeddings.word_embeddings.weight", {c.vocab_size, D});
  m.pos_emb_ = w.get("embeddings.position_embeddings.weight", {position_rows, D});
  m.type_emb_ = w.get("embeddings.token_type_embeddings.weight", {c.type_vocab_size, D});
  m.emb_ln_w_ = w.get("embeddings.LayerNorm.weight", {D});
  m.emb_ln_b_ = w.get("embeddings.LayerNorm.bias", {D});
  m.layers_ = read_encoder_layers(w, bert_layer_names(), c.num_layers, D, F);
  m.dense_w_ = w.get("classifier.dense.weight", {D, D});
  m.dense_b_ = w.get("classifier.dense.bias", {D});
  m.out_w_ = w.get("classifier.out_proj.weight", {c.num_labels, D});
  m.out_b_ = w.get("classifier.out_proj.bias", {c.num_labels});
  m.to_device(device,
              {&m.word_emb_, &m.pos_emb_, &m.type_emb_, &m.dense_w_, &m.dense_b_, &m.out_w_, &m.out_b_});
  return m;
}

torch::Tensor RobertaClassifier::embed(const TextBatch& batch) const {
  check_batch(batch);
  const auto ids = batch.input_ids.to(device_);
  // create_position_ids_from_input_ids: cumsum of the non-padding mask, times the mask, plus padding_idx.
  const auto real = ids.ne(padding_idx_).to(torch::kInt64);
  const auto positions = torch::cumsum(real, 1).mul(real).add(padding_idx_);
  return torch::embedding(word_emb_, ids) + torch::embedding(type_emb_, batch.token_type_ids.to(device_)) +
         torch::embedding(pos_emb_, positions);
}

torch::Tensor RobertaClassifier::word_embeddings(const TextBatch& batch) const {
  check_batch(batch);
  return torch::embedding(word_emb_, batch.input_ids.to(device_));
}

torch::Tensor RobertaClassifier::head(const torch::Tensor& hidden, const ForwardRules& rules) const {
  const auto x = rules.activation(rules.linear(hidden.select(1, 0), dense_w_, dense_b_, LinearSite::Head),
                                  Activation::Tanh);
  return rules.linear(x, out_w_, out_b_, LinearSite::Head);
}

}  // namespace attnlens
