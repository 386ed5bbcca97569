#include "models/text_classifier.hpp"

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/array.hpp"
#include "io/safetensors.hpp"
#include "models/bert.hpp"
#include "models/checkpoint.hpp"
#include "models/distilbert.hpp"
#include "models/roberta.hpp"

namespace attnlens {

Activation activation_of(const std::string& name) {
  if (name == "gelu") return Activation::Gelu;  // exact erf form, as Hugging Face's "gelu"
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::GeluTanh;
  return Activation::Relu;
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
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

void TextClassifier::check_batch(const TextBatch& batch) const {
  const auto& c = config_;
  if (!batch.input_ids.defined() || batch.input_ids.dim() != 2 || batch.input_ids.size(0) == 0)
    throw InputError("token ids must be a non-empty [B, T] batch");
  if (batch.length() > c.max_positions)
    throw InputError("text has " + std::to_string(batch.length()) + " tokens; the model takes at most " +
                     std::to_string(c.max_positions));
  const auto ids = batch.input_ids;
  if (ids.min().item<std::int64_t>() < 0 || ids.max().item<std::int64_t>() >= c.vocab_size)
    throw InputError("token id out of range for a vocabulary of " + std::to_string(c.vocab_size) +
                     " (does the tokenizer belong to this model?)");
  if (c.type_vocab_size > 0 && batch.token_type_ids.defined()) {
    const auto types = batch.token_type_ids;
    if (types.min().item<std::int64_t>() < 0 || types.max().item<std::int64_t>() >= c.type_vocab_size)
      throw InputError("token type id out of range (the model has " + std::to_string(c.type_vocab_size) + ")");
  }
}

void TextClassifier::check_config(const std::string& weights_path, const std::string& config_path) const {
  const auto& c = config_;
  const std::string& act = c.hidden_act;
  if (act != "gelu" && act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "relu")
    throw InputError(config_path + ": unsupported activation '" + act + "'");
  if (c.num_heads <= 0 || c.hidden_size % c.num_heads != 0)
    throw InputError(weights_path + ": " +
                     (c.num_heads > 0 ? std::to_string(c.num_heads) + " attention heads do not divide the width " +
                                            std::to_string(c.hidden_size) + " of the weights"
                                      : "cannot tell the number of attention heads (hidden size " +
                                            std::to_string(c.hidden_size) + "); put the head count in config.json"));
  if (!c.labels.empty() && static_cast<int>(c.labels.size()) != c.num_labels)
    throw InputError(config_path + ": " + std::to_string(c.labels.size()) + " labels for " +
                     std::to_string(c.num_labels) + " classes");
}

void TextClassifier::to_device(const torch::Device& device, const std::vector<torch::Tensor*>& family_tensors) {
  check_device(device);
  device_ = device;
  for (torch::Tensor* t : family_tensors) *t = t->to(device);
  for (torch::Tensor* t : {&emb_ln_w_, &emb_ln_b_}) *t = t->to(device);
  for (EncoderLayer& k : layers_)
    for (torch::Tensor* t : {&k.q_w, &k.q_b, &k.k_w, &k.k_b, &k.v_w, &k.v_b, &k.out_w, &k.out_b, &k.ln1_w, &k.ln1_b,
                             &k.ffn_in_w, &k.ffn_in_b, &k.ffn_out_w, &k.ffn_out_b, &k.ln2_w, &k.ln2_b})
      *t = t->to(device);
}

torch::Tensor TextClassifier::forward_from(const torch::Tensor& hidden, const torch::Tensor& attention_mask,
                                           int first_layer, const TextIntervention& iv, TextCapture* capture) const {
  const auto& c = config_;
  const ForwardRules& rules = iv.rules;
  const std::int64_t B = hidden.size(0), T = hidden.size(1), D = c.hidden_size, H = c.num_heads, hd = c.head_dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  if (iv.head_mask.defined() && (iv.head_mask.dim() != 2 || iv.head_mask.size(0) != c.num_layers ||
                                 iv.head_mask.size(1) != H))
    throw InputError("head mask must be [" + std::to_string(c.num_layers) + "," + std::to_string(H) + "]");
  if (rules.key_factors.defined() && rules.key_factors.sizes() != torch::IntArrayRef({B, T}))
    throw InputError("AtMan's key factors must be [" + std::to_string(B) + "," + std::to_string(T) + "]");
  const auto factors = rules.key_factors.defined() ? rules.key_factors.to(hidden.options()).view({B, 1, 1, T})
                                                   : torch::Tensor();
  const auto keep = attention_mask.to(device_, torch::kFloat32).view({B, 1, 1, T});
  // Padding keys: BERT and RoBERTa add (1 - m) * mask_value to the scores (get_extended_attention_mask);
  // DistilBERT sets their scores to mask_value (masked_fill).
  const auto mask_add = (1.0 - keep).mul(c.mask_value);
  const auto masked = keep.eq(0.0);
  const Activation act = activation_of(c.hidden_act);
  auto x = hidden;
  for (int l = first_layer; l < c.num_layers; ++l) {
    const EncoderLayer& k = layers_[static_cast<size_t>(l)];
    if (capture != nullptr) capture->hidden_in.push_back(x);
    auto split = [&](const torch::Tensor& t) { return t.view({B, T, H, hd}).permute({0, 2, 1, 3}); };
    // AG-CAM: the attention reads a leaf copy of the layer input, so no gradient leaves it (the residual keeps x).
    const auto in = rules.detach_attention_input ? x.detach().requires_grad_(x.requires_grad()) : x;
    const auto v = split(rules.linear(in, k.v_w, k.v_b, LinearSite::AttentionProjection));
    torch::Tensor scores, probs;
    if (l == iv.replaced_layer) {
      // Integrated gradients: the given probabilities stand in for the softmax, so queries and keys are not needed.
      if (!iv.replaced_attention.defined() || iv.replaced_attention.sizes() != torch::IntArrayRef({B, H, T, T}))
        throw InputError("the replacement attention must be [" + std::to_string(B) + "," + std::to_string(H) + "," +
                         std::to_string(T) + "," + std::to_string(T) + "]");
      probs = iv.replaced_attention;
      if (capture != nullptr) scores = torch::zeros_like(probs);  // no scores here; keeps capture's per-layer lists
    } else {
      auto q = split(rules.linear(in, k.q_w, k.q_b, LinearSite::AttentionProjection));
      auto key = split(rules.linear(in, k.k_w, k.k_b, LinearSite::AttentionProjection));
      if (rules.lrp == LrpRules::Cp) {  // attention probabilities as constant mixing weights
        q = q.detach();
        key = key.detach();
      }
      // AtMan shifts each row to be >= 0 and scales the suppressed key columns before the mask (spec 18.1).
      const auto suppress = [&](const torch::Tensor& s) {
        return factors.defined() ? (s - s.amin(-1, true)) * factors : s;
      };
      if (score_form_ == ScoreForm::ScaleProduct) {
        // LXT's BERT halves the raw product's gradient, before the scale and the mask (spec 14.2 c).
        scores = suppress(rules.bilinear_product(torch::matmul(q, key.transpose(-2, -1))).mul(scale)).add(mask_add);
      } else {
        scores = suppress(rules.bilinear_product(torch::matmul(q.mul(scale), key.transpose(-2, -1))))
                     .masked_fill(masked, c.mask_value);
      }
      probs = torch::softmax(scores, -1);
      if (iv.head_mask.defined()) probs = probs * iv.head_mask[l].to(probs.options()).view({1, H, 1, 1});
    }
    if (capture != nullptr) {
      if (scores.requires_grad()) scores.retain_grad();
      if (probs.requires_grad() && !probs.is_leaf()) probs.retain_grad();
      capture->scores_grad.push_back(scores);  // the tensors now; their gradients after backward
      capture->attention.push_back(probs);
      if (rules.record_scores) capture->scores.push_back(scores.detach());
      if (rules.record_values)
        capture->value_proj.push_back(torch::linear(v.permute({0, 2, 1, 3}).reshape({B, T, D}), k.out_w).detach());
    }
    const auto context = rules.bilinear_product(torch::matmul(probs, v)).permute({0, 2, 1, 3}).reshape({B, T, D});
    x = rules.layer_norm(x + rules.linear(context, k.out_w, k.out_b, LinearSite::AttentionProjection), k.ln1_w,
                         k.ln1_b, c.layer_norm_eps);
    const auto inner = rules.activation(rules.linear(x, k.ffn_in_w, k.ffn_in_b, LinearSite::FeedForward), act);
    x = rules.layer_norm(x + rules.linear(inner, k.ffn_out_w, k.ffn_out_b, LinearSite::FeedForward), k.ln2_w,
                         k.ln2_b, c.layer_norm_eps);
  }
  return head(x, rules);
}

torch::Tensor TextClassifier::embedding_output(const TextBatch& batch) const {
  return torch::layer_norm(embed(batch), {config_.hidden_size}, emb_ln_w_, emb_ln_b_, config_.layer_norm_eps);
}

torch::Tensor TextClassifier::classify_embeddings(const torch::Tensor& embeddings,
                                                  const torch::Tensor& attention_mask, const TextIntervention& iv,
                                                  TextCapture* capture) const {
  const auto x = iv.rules.layer_norm(embeddings, emb_ln_w_, emb_ln_b_, config_.layer_norm_eps);
  return forward_from(x, attention_mask, 0, iv, capture);
}

torch::Tensor TextClassifier::forward(const TextBatch& batch, const TextIntervention& iv) const {
  torch::NoGradGuard no_grad;
  return classify_embeddings(embed(batch), batch.attention_mask, iv, nullptr);
}

TextCapture TextClassifier::capture(const TextBatch& batch, const std::vector<std::int64_t>& targets,
                                    TargetKind kind, const TextIntervention& iv) const {
  TextCapture cap;
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
  const auto index = target_index(cap.logits, targets, "label");
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

std::unique_ptr<TextClassifier> load_text_classifier(const std::string& path, const torch::Device& device) {
  const std::string weights = resolve_weights_path(path);
  const SafetensorsFile file = SafetensorsFile::open(weights);
  // Each family by the tensors only it has (names end with these; any prefix such as "bert." is allowed).
  struct Family {
    const char* name;
    std::vector<const char*> markers;
  };
  const std::vector<Family> families = {
      {"BERT (BertForSequenceClassification)",
       {"embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight", "pooler.dense.weight",
        "classifier.weight"}},
      {"DistilBERT (DistilBertForSequenceClassification)",
       {"embeddings.word_embeddings.weight", "transformer.layer.0.attention.q_lin.weight", "pre_classifier.weight",
        "classifier.weight"}},
      {"RoBERTa (RobertaForSequenceClassification)",
       {"embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight", "classifier.dense.weight",
        "classifier.out_proj.weight"}},
  };
  std::string tried;
  for (size_t f = 0; f < families.size(); ++f) {
    std::vector<std::string> missing;
    for (const char* marker : families[f].markers) {
      bool found = false;
      for (const auto& t : file.tensors()) found = found || ends_with(t.name, marker);
      if (!found) missing.push_back(marker);
    }
    if (missing.empty()) {
      if (f == 0) return std::make_unique<BertClassifier>(BertClassifier::load(path, device));
      if (f == 1) return std::make_unique<DistilBertClassifier>(DistilBertClassifier::load(path, device));
      return std::make_unique<RobertaClassifier>(RobertaClassifier::load(path, device));
    }
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    tried += std::string(tried.empty() ? "" : "; ") + families[f].name + " lacks " + list;
  }
  throw InputError(weights + ": not a text classifier attnlens knows (tried " + tried + ")");
}

}  // namespace attnlens
