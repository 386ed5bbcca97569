#include "models/bert.hpp"

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/array.hpp"
#include "io/safetensors.hpp"
#include "models/checkpoint.hpp"

namespace attnlens {

namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Hugging Face names with or without the "bert." prefix (BertForSequenceClassification vs a bare BertModel saved
// with a classifier), and the legacy LayerNorm.gamma/beta spelling of TensorFlow-converted checkpoints.
class BertWeights {
 public:
  BertWeights(const SafetensorsFile& file, std::string file_name) : file_(file), file_name_(std::move(file_name)) {
    const std::string marker = "embeddings.word_embeddings.weight";
    bool found = false;
    for (const auto& t : file.tensors()) {
      if (ends_with(t.name, marker)) {
        prefix_ = t.name.substr(0, t.name.size() - marker.size());
        found = true;
      }
      if (ends_with(t.name, "LayerNorm.gamma")) legacy_ = true;
    }
    if (!found)
      throw InputError(file_name_ + ": unknown tensor naming: expected Hugging Face BERT names "
                                    "(bert.embeddings.word_embeddings.weight, bert.encoder.layer.N..., classifier.*)");
  }

  bool legacy() const { return legacy_; }

  std::string resolve(const std::string& name) const {
    std::string full = (name.rfind("classifier.", 0) == 0 ? "" : prefix_) + name;
    if (legacy_ && !file_.find(full)) {
      if (ends_with(full, "LayerNorm.weight")) full = full.substr(0, full.size() - 6) + "gamma";
      else if (ends_with(full, "LayerNorm.bias")) full = full.substr(0, full.size() - 4) + "beta";
    }
    return full;
  }
  bool has(const std::string& name) const { return file_.find(resolve(name)) != nullptr; }
  std::vector<std::int64_t> shape_of(const std::string& name) const {
    const TensorInfo* info = file_.find(resolve(name));
    if (info == nullptr) throw InputError(file_name_ + ": missing tensor '" + resolve(name) + "'");
    return info->shape;
  }
  torch::Tensor get(const std::string& name, const std::vector<std::int64_t>& shape) const {
    return load_checked_tensor(file_, resolve(name), shape, file_name_);
  }
  int count_layers() const {
    int layers = 0;
    const std::string marker = prefix_ + "encoder.layer.";
    for (const auto& t : file_.tensors())
      if (t.name.rfind(marker, 0) == 0) layers = std::max(layers, std::stoi(t.name.substr(marker.size())) + 1);
    return layers;
  }

 private:
  const SafetensorsFile& file_;
  std::string file_name_;
  std::string prefix_;
  bool legacy_ = false;
};

torch::Tensor activation(const torch::Tensor& x, const std::string& name) {
  if (name == "gelu") return torch::gelu(x);  // exact erf form, as Hugging Face's "gelu"
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  return torch::relu(x);
}

}  // namespace

TextBatch make_text_batch(const std::vector<std::vector<std::int64_t>>& ids,
                          const std::vector<std::vector<std::int64_t>>& token_types, std::int64_t pad_id) {
  if (ids.empty()) throw InputError("no texts to run");
  std::int64_t length = 0;
  for (const auto& row : ids) length = std::max<std::int64_t>(length, static_cast<std::int64_t>(row.size()));
  const auto B = static_cast<std::int64_t>(ids.size());
  TextBatch batch;
  batch.input_ids = torch::full({B, length}, pad_id, torch::kInt64);
  batch.token_type_ids = torch::zeros({B, length}, torch::kInt64);
  batch.attention_mask = torch::zeros({B, length}, torch::kInt64);
  auto id_acc = batch.input_ids.accessor<std::int64_t, 2>();
  auto type_acc = batch.token_type_ids.accessor<std::int64_t, 2>();
  auto mask_acc = batch.attention_mask.accessor<std::int64_t, 2>();
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& row = ids[static_cast<size_t>(b)];
    for (size_t t = 0; t < row.size(); ++t) {
      id_acc[b][static_cast<std::int64_t>(t)] = row[t];
      mask_acc[b][static_cast<std::int64_t>(t)] = 1;
      if (static_cast<size_t>(b) < token_types.size() && t < token_types[static_cast<size_t>(b)].size())
        type_acc[b][static_cast<std::int64_t>(t)] = token_types[static_cast<size_t>(b)][t];
    }
  }
  return batch;
}

BertClassifier BertClassifier::load(const std::string& path, const torch::Device& device) {
  const fs::path weights = resolve_weights_path(path);
  const SafetensorsFile file = SafetensorsFile::open(weights.string());
  const BertWeights w(file, weights.string());

  BertClassifier m;
  BertConfig& c = m.config_;
  c.naming = w.legacy() ? "hf-legacy" : "hf";
  const auto word_shape = w.shape_of("embeddings.word_embeddings.weight");
  if (word_shape.size() != 2) throw InputError(weights.string() + ": word embeddings must be [V, D]");
  c.vocab_size = static_cast<int>(word_shape[0]);
  c.hidden_size = static_cast<int>(word_shape[1]);
  c.max_positions = static_cast<int>(w.shape_of("embeddings.position_embeddings.weight")[0]);
  c.type_vocab_size = static_cast<int>(w.shape_of("embeddings.token_type_embeddings.weight")[0]);
  c.num_layers = w.count_layers();
  if (c.num_layers == 0) throw InputError(weights.string() + ": no encoder layers found");
  c.intermediate_size = static_cast<int>(w.shape_of("encoder.layer.0.intermediate.dense.weight")[0]);
  if (!w.has("classifier.weight"))
    throw InputError(weights.string() + ": missing tensor 'classifier.weight' (a sequence classifier is needed)");
  c.num_labels = static_cast<int>(w.shape_of("classifier.weight")[0]);
  c.num_heads = c.hidden_size % 64 == 0 ? c.hidden_size / 64 : 0;

  std::string hidden_act = "gelu";
  const fs::path config_path = weights.parent_path() / "config.json";
  if (const auto j = read_config_json(config_path.string())) {
    BertConfigKeys k{c.num_heads, c.layer_norm_eps, hidden_act, c.do_lower_case, c.mask_value, c.labels,
                     c.vocab_size, c.hidden_size, c.num_layers};
    read_bert_config_keys(*j, k, config_path.string());
    c.num_heads = k.num_heads;
    c.layer_norm_eps = k.layer_norm_eps;
    hidden_act = k.hidden_act;
    c.do_lower_case = k.do_lower_case;
    c.mask_value = k.mask_value;
    c.labels = std::move(k.labels);
  }
  if (hidden_act != "gelu" && hidden_act != "gelu_new" && hidden_act != "gelu_pytorch_tanh" && hidden_act != "relu")
    throw InputError(config_path.string() + ": unsupported hidden_act '" + hidden_act + "'");
  if (c.num_heads <= 0 || c.hidden_size % c.num_heads != 0)
    throw InputError(weights.string() + ": cannot tell the number of attention heads (hidden size " +
                     std::to_string(c.hidden_size) + "); put \"num_attention_heads\" in config.json");
  if (!c.labels.empty() && static_cast<int>(c.labels.size()) != c.num_labels)
    throw InputError(config_path.string() + ": " + std::to_string(c.labels.size()) + " labels for " +
                     std::to_string(c.num_labels) + " classes");
  m.activation_ = hidden_act;

  const std::int64_t D = c.hidden_size, F = c.intermediate_size;
  m.word_emb_ = w.get("embeddings.word_embeddings.weight", {c.vocab_size, D});
  m.pos_emb_ = w.get("embeddings.position_embeddings.weight", {c.max_positions, D});
  m.type_emb_ = w.get("embeddings.token_type_embeddings.weight", {c.type_vocab_size, D});
  m.emb_ln_w_ = w.get("embeddings.LayerNorm.weight", {D});
  m.emb_ln_b_ = w.get("embeddings.LayerNorm.bias", {D});
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    Layer k;
    k.q_w = w.get(p + "attention.self.query.weight", {D, D});
    k.q_b = w.get(p + "attention.self.query.bias", {D});
    k.k_w = w.get(p + "attention.self.key.weight", {D, D});
    k.k_b = w.get(p + "attention.self.key.bias", {D});
    k.v_w = w.get(p + "attention.self.value.weight", {D, D});
    k.v_b = w.get(p + "attention.self.value.bias", {D});
    k.out_w = w.get(p + "attention.output.dense.weight", {D, D});
    k.out_b = w.get(p + "attention.output.dense.bias", {D});
    k.ln1_w = w.get(p + "attention.output.LayerNorm.weight", {D});
    k.ln1_b = w.get(p + "attention.output.LayerNorm.bias", {D});
    k.inter_w = w.get(p + "intermediate.dense.weight", {F, D});
    k.inter_b = w.get(p + "intermediate.dense.bias", {F});
    k.ffn_w = w.get(p + "output.dense.weight", {D, F});
    k.ffn_b = w.get(p + "output.dense.bias", {D});
    k.ln2_w = w.get(p + "output.LayerNorm.weight", {D});
    k.ln2_b = w.get(p + "output.LayerNorm.bias", {D});
    m.layers_.push_back(std::move(k));
  }
  m.pooler_w_ = w.get("pooler.dense.weight", {D, D});
  m.pooler_b_ = w.get("pooler.dense.bias", {D});
  m.cls_w_ = w.get("classifier.weight", {c.num_labels, D});
  m.cls_b_ = w.get("classifier.bias", {c.num_labels});

  check_device(device);
  m.device_ = device;
  for (torch::Tensor* t : {&m.word_emb_, &m.pos_emb_, &m.type_emb_, &m.emb_ln_w_, &m.emb_ln_b_, &m.pooler_w_,
                           &m.pooler_b_, &m.cls_w_, &m.cls_b_})
    *t = t->to(device);
  for (Layer& k : m.layers_)
    for (torch::Tensor* t : {&k.q_w, &k.q_b, &k.k_w, &k.k_b, &k.v_w, &k.v_b, &k.out_w, &k.out_b, &k.ln1_w, &k.ln1_b,
                             &k.inter_w, &k.inter_b, &k.ffn_w, &k.ffn_b, &k.ln2_w, &k.ln2_b})
      *t = t->to(device);
  return m;
}

void BertClassifier::check_batch(const TextBatch& batch) const {
  const auto& c = config_;
  if (!batch.input_ids.defined() || batch.input_ids.dim() != 2 || batch.input_ids.size(0) == 0)
    throw InputError("token ids must be a non-empty [B, T] batch");
  if (batch.length() > c.max_positions)
    throw InputError("text has " + std::to_string(batch.length()) + " tokens; the model takes at most " +
                     std::to_string(c.max_positions));
  const auto ids = batch.input_ids;
  if (ids.min().item<std::int64_t>() < 0 || ids.max().item<std::int64_t>() >= c.vocab_size)
    throw InputError("token id out of range for a vocabulary of " + std::to_string(c.vocab_size) +
                     " (does vocab.txt belong to this model?)");
  const auto types = batch.token_type_ids;
  if (types.min().item<std::int64_t>() < 0 || types.max().item<std::int64_t>() >= c.type_vocab_size)
    throw InputError("token type id out of range (the model has " + std::to_string(c.type_vocab_size) + ")");
}

torch::Tensor BertClassifier::embed(const TextBatch& batch) const {
  check_batch(batch);
  const auto T = batch.length();
  const auto positions = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(device_));
  return torch::embedding(word_emb_, batch.input_ids.to(device_)) + torch::embedding(pos_emb_, positions) +
         torch::embedding(type_emb_, batch.token_type_ids.to(device_));
}

torch::Tensor BertClassifier::forward_from(const torch::Tensor& hidden, const torch::Tensor& attention_mask,
                                           int first_layer, const BertIntervention& iv, BertCapture* capture) const {
  const auto& c = config_;
  const std::int64_t B = hidden.size(0), T = hidden.size(1), D = c.hidden_size, H = c.num_heads, hd = c.head_dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  if (iv.head_mask.defined() && (iv.head_mask.dim() != 2 || iv.head_mask.size(0) != c.num_layers ||
                                 iv.head_mask.size(1) != H))
    throw InputError("head mask must be [" + std::to_string(c.num_layers) + "," + std::to_string(H) + "]");
  // Padding keys get mask_value added to their scores: the additive mask of BERT's get_extended_attention_mask.
  const auto mask_add =
      (1.0 - attention_mask.to(device_, torch::kFloat32)).mul(c.mask_value).view({B, 1, 1, T});
  auto x = hidden;
  for (int l = first_layer; l < c.num_layers; ++l) {
    const Layer& k = layers_[static_cast<size_t>(l)];
    if (capture != nullptr) capture->hidden_in.push_back(x);
    auto split = [&](const torch::Tensor& t) { return t.view({B, T, H, hd}).permute({0, 2, 1, 3}); };
    const auto v = split(torch::linear(x, k.v_w, k.v_b));
    torch::Tensor scores, probs;
    if (l == iv.replaced_layer) {
      // Integrated gradients: the given probabilities stand in for the softmax, so queries and keys are not needed.
      if (!iv.replaced_attention.defined() || iv.replaced_attention.sizes() != torch::IntArrayRef({B, H, T, T}))
        throw InputError("the replacement attention must be [" + std::to_string(B) + "," + std::to_string(H) + "," +
                         std::to_string(T) + "," + std::to_string(T) + "]");
      probs = iv.replaced_attention;
      if (capture != nullptr) scores = torch::zeros_like(probs);  // no scores here; keeps capture's per-layer lists
    } else {
      const auto q = split(torch::linear(x, k.q_w, k.q_b));
      const auto key = split(torch::linear(x, k.k_w, k.k_b));
      // Hugging Face's order, (q k^T) * scale, then the additive padding mask.
      scores = torch::matmul(q, key.transpose(-2, -1)).mul(scale).add(mask_add);
      probs = torch::softmax(scores, -1);
      if (iv.head_mask.defined()) probs = probs * iv.head_mask[l].to(probs.options()).view({1, H, 1, 1});
    }
    if (capture != nullptr) {
      if (scores.requires_grad()) scores.retain_grad();
      if (probs.requires_grad() && !probs.is_leaf()) probs.retain_grad();
      capture->scores_grad.push_back(scores);  // the tensors now; their gradients after backward
      capture->attention.push_back(probs);
    }
    const auto context = torch::matmul(probs, v).permute({0, 2, 1, 3}).reshape({B, T, D});
    x = torch::layer_norm(x + torch::linear(context, k.out_w, k.out_b), {D}, k.ln1_w, k.ln1_b, c.layer_norm_eps);
    const auto inner = activation(torch::linear(x, k.inter_w, k.inter_b), activation_);
    x = torch::layer_norm(x + torch::linear(inner, k.ffn_w, k.ffn_b), {D}, k.ln2_w, k.ln2_b, c.layer_norm_eps);
  }
  const auto pooled = torch::tanh(torch::linear(x.select(1, 0), pooler_w_, pooler_b_));
  return torch::linear(pooled, cls_w_, cls_b_);
}

torch::Tensor BertClassifier::embedding_output(const TextBatch& batch) const {
  return torch::layer_norm(embed(batch), {config_.hidden_size}, emb_ln_w_, emb_ln_b_, config_.layer_norm_eps);
}

torch::Tensor BertClassifier::classify_embeddings(const torch::Tensor& embeddings,
                                                  const torch::Tensor& attention_mask, const BertIntervention& iv,
                                                  BertCapture* capture) const {
  const auto x = torch::layer_norm(embeddings, {config_.hidden_size}, emb_ln_w_, emb_ln_b_, config_.layer_norm_eps);
  return forward_from(x, attention_mask, 0, iv, capture);
}

torch::Tensor BertClassifier::forward(const TextBatch& batch, const BertIntervention& iv) const {
  torch::NoGradGuard no_grad;
  return classify_embeddings(embed(batch), batch.attention_mask, iv, nullptr);
}

BertCapture BertClassifier::capture(const TextBatch& batch, const std::vector<std::int64_t>& targets,
                                    TargetKind kind, const BertIntervention& iv) const {
  BertCapture cap;
  if (targets.empty()) {
    torch::NoGradGuard no_grad;
    cap.embeddings = embedding_output(batch);
    cap.logits = forward_from(cap.embeddings, batch.attention_mask, 0, iv, &cap);
    cap.scores_grad.clear();
    return cap;
  }
  if (static_cast<std::int64_t>(targets.size()) != batch.size())
    throw InputError("one target class per text is needed");
  cap.embeddings = embedding_output(batch).detach().requires_grad_(true);
  cap.logits = forward_from(cap.embeddings, batch.attention_mask, 0, iv, &cap);
  const std::int64_t C = cap.logits.size(1);
  std::vector<std::int64_t> chosen = targets;
  const auto predicted = cap.logits.detach().argmax(1).to(torch::kCPU);
  for (size_t b = 0; b < chosen.size(); ++b) {
    if (chosen[b] < 0) chosen[b] = predicted[static_cast<std::int64_t>(b)].item<std::int64_t>();
    if (chosen[b] >= C)
      throw InputError("label " + std::to_string(chosen[b]) + " is out of range: the model has " +
                       std::to_string(C) + " classes (0.." + std::to_string(C - 1) + ")");
  }
  const auto index = torch::tensor(chosen, torch::kInt64).to(device_).unsqueeze(1);
  const auto values = kind == TargetKind::Probability ? torch::softmax(cap.logits, 1) : cap.logits;
  // Texts are independent, so each text's gradients are its own target's.
  values.gather(1, index).sum().backward();
  for (size_t l = 0; l < cap.attention.size(); ++l) {
    const auto grad = cap.attention[l].grad();
    cap.attention_grad.push_back(grad.defined() ? grad.detach() : torch::zeros_like(cap.attention[l]));
    const auto sgrad = cap.scores_grad[l].grad();
    cap.scores_grad[l] = sgrad.defined() ? sgrad.detach() : torch::zeros_like(cap.scores_grad[l]);
    cap.attention[l] = cap.attention[l].detach();
    cap.hidden_in[l] = cap.hidden_in[l].detach();
  }
  cap.embeddings_grad = cap.embeddings.grad().detach();
  cap.embeddings = cap.embeddings.detach();
  cap.logits = cap.logits.detach();
  return cap;
}

}  // namespace attnlens
