// AttAttr (Hao et al., AAAI 2021; spec 5): integrated gradients on one layer's attention probabilities.
#include <algorithm>

#include "explain/text_methods.hpp"

namespace attnlens {

namespace {

void check_text(const TextClassifier& model, const TextBatch& text, std::int64_t target, const AttAttrOptions& o) {
  if (text.size() != 1) throw InputError("AttAttr explains one text at a time");
  if (target < 0 || target >= model.config().num_labels)
    throw InputError("target class " + std::to_string(target) + " is out of range");
  if (o.steps < 1) throw InputError("--steps must be >= 1");
  if (o.batch < 0) throw InputError("--ig-batch must be >= 0");
  for (int l : o.layers)
    if (l < 0 || l >= model.config().num_layers) throw InputError("AttAttr layer " + std::to_string(l) + " is out of range");
}

std::vector<double> alphas(const AttAttrOptions& o) {
  std::vector<double> a;
  for (int k = 0; k < o.steps; ++k)
    a.push_back(static_cast<double>(o.riemann == RiemannSum::Right ? k + 1 : k) / o.steps);
  return a;
}

std::vector<int> layers_of(const TextClassifier& model, const AttAttrOptions& o) {
  if (!o.layers.empty()) return o.layers;
  std::vector<int> all(static_cast<size_t>(model.config().num_layers));
  for (size_t l = 0; l < all.size(); ++l) all[l] = static_cast<int>(l);
  return all;
}

// Writes A/m * sum_k grads into layer l of `out` ([L,H,T,T]).
void store(Array& out, int l, const torch::Tensor& attention, const torch::Tensor& grad_sum, int steps) {
  const auto attr = (attention * grad_sum / static_cast<double>(steps)).to(torch::kCPU, torch::kFloat64).contiguous();
  const auto per = static_cast<size_t>(attr.numel());
  std::copy(attr.data_ptr<double>(), attr.data_ptr<double>() + per, out.data.begin() + static_cast<size_t>(l) * per);
}

}  // namespace

Array attattr(const TextClassifier& model, const TextBatch& text, std::int64_t target, const AttAttrOptions& o) {
  check_text(model, text, target, o);
  const auto& c = model.config();
  const std::int64_t T = text.length(), H = c.num_heads;
  TextCapture clean = model.capture(text);  // attention A and every layer's input, computed once
  Array out({c.num_layers, H, T, T});
  const auto a = alphas(o);
  const int chunk = o.batch > 0 ? o.batch : o.steps;
  for (int l : layers_of(model, o)) {
    const auto& A = clean.attention[static_cast<size_t>(l)];  // [1,H,T,T]
    torch::Tensor grad_sum = torch::zeros_like(A[0]);
    for (int begin = 0; begin < o.steps; begin += chunk) {
      const int n = std::min(chunk, o.steps - begin);
      const auto alpha = torch::tensor(std::vector<double>(a.begin() + begin, a.begin() + begin + n))
                             .to(A.options())
                             .view({n, 1, 1, 1});
      TextIntervention iv;
      iv.replaced_layer = l;
      iv.replaced_attention = (alpha * A).detach().requires_grad_(true);
      // The layers below l do not depend on alpha: start from their output, repeated for every alpha.
      const auto hidden = clean.hidden_in[static_cast<size_t>(l)].expand({n, T, c.hidden_size});
      const auto mask = text.attention_mask.expand({n, T});
      const auto logits = model.forward_from(hidden, mask, l, iv);
      const auto F = torch::softmax(logits, 1).select(1, target).sum();
      grad_sum += torch::autograd::grad({F}, {iv.replaced_attention})[0].sum(0);
    }
    store(out, l, A[0], grad_sum, o.steps);
  }
  return out;
}

Array attattr_one_by_one(const TextClassifier& model, const TextBatch& text, std::int64_t target,
                         const AttAttrOptions& o) {
  check_text(model, text, target, o);
  const auto& c = model.config();
  const std::int64_t T = text.length(), H = c.num_heads;
  Array out({c.num_layers, H, T, T});
  const TextCapture clean = model.capture(text);
  for (int l : layers_of(model, o)) {
    const auto& A = clean.attention[static_cast<size_t>(l)];
    torch::Tensor grad_sum = torch::zeros_like(A[0]);
    for (double alpha : alphas(o)) {
      TextIntervention iv;
      iv.replaced_layer = l;
      iv.replaced_attention = (A * alpha).detach().requires_grad_(true);
      const auto logits = model.classify_embeddings(model.embed(text), text.attention_mask, iv);
      const auto F = torch::softmax(logits, 1).select(1, target).sum();
      grad_sum += torch::autograd::grad({F}, {iv.replaced_attention})[0][0];
    }
    store(out, l, A[0], grad_sum, o.steps);
  }
  return out;
}

std::vector<double> attattr_token_scores(const Array& attribution) {
  if (attribution.rank() != 4) throw InputError("an AttAttr tensor is [L,H,T,T]");
  const std::int64_t T = attribution.shape[3];
  std::vector<double> scores(static_cast<size_t>(T), 0.0);
  for (std::int64_t i = 0; i < attribution.size(); ++i) scores[static_cast<size_t>(i % T)] += attribution.data[i];
  return scores;
}

Array attattr_head_importance(const Array& attribution) {
  if (attribution.rank() != 4) throw InputError("an AttAttr tensor is [L,H,T,T]");
  const std::int64_t L = attribution.shape[0], H = attribution.shape[1];
  const std::int64_t per = attribution.shape[2] * attribution.shape[3];
  Array out({L, H});
  for (std::int64_t m = 0; m < L * H; ++m)
    out.data[m] = *std::max_element(attribution.data.begin() + m * per, attribution.data.begin() + (m + 1) * per);
  return out;
}

}  // namespace attnlens
