// Beyond Intuition (Chen et al., CVPR 2023; spec 16): attention aggregated over the blocks from a start layer, with
// heads weighted by their gradients (bi-attn, "Ours-H") or tokens by how much their values change the stream
// (bi-attn-token, "Ours-T"), then multiplied entry by entry by the last block's attention gradient averaged along the
// path from a zero input to the image (its integrated-gradient step).
#include "core/gradient_methods.hpp"
#include "explain/model_method.hpp"
#include "models/arrays.hpp"

namespace attnlens {

namespace {

class BeyondIntuition : public ModelExplanationMethod {
 public:
  BeyondIntuition(const MethodSettings& s, bool token_wise) : s_(s), token_wise_(token_wise) {
    if (s.steps < 1) throw InputError("--steps must be >= 1");
    if (s.bi_start_layer < -1) throw InputError("--bi-start-layer must be >= 0 (or -1: the authors' choice)");
  }
  std::string name() const override { return token_wise_ ? "bi-attn-token" : "bi-attn"; }

  int first_block(int depth) const {
    if (s_.bi_start_layer >= 0) return s_.bi_start_layer;
    // generate_ours(start_layer=4) begins at block 3 of 12, generate_ours_c(start_layer=6) at block 5 (spec 16.5a).
    return token_wise_ ? 5 * depth / 12 : depth / 4;
  }
  void check(const ImageModelConfig& c) const override {
    ModelExplanationMethod::check(c);
    if (first_block(c.depth) >= c.depth)
      throw InputError("--bi-start-layer " + std::to_string(first_block(c.depth)) + " is out of range: the model has " +
                       std::to_string(c.depth) + " blocks (0-based)");
    if (s_.query_row >= c.tokens()) throw InputError("--query-row is out of range for this model");
  }

  Array explain_image(const ImageClassifier& model, const torch::Tensor& image, std::int64_t target) const override {
    const ImageModelConfig& c = model.config();
    const torch::Tensor x = image.unsqueeze(0);
    ForwardRules rules;
    rules.record_values = token_wise_;
    const ImageCapture cap = model.capture(x, {target}, rules);
    const Array attention = image_layers(cap.attention, 0);
    Array relevance;
    if (!token_wise_) {
      relevance = bi_head_relevance(AttentionView::of(attention), AttentionView::of(image_layers(cap.attention_grad, 0)),
                                    first_block(c.depth));
    } else {
      // o_t = ||V W_proj^T||_2 / ||z||_2 per token, z the block's input (the reference's vproj has no bias).
      std::vector<torch::Tensor> ratios;
      for (size_t l = 0; l < cap.block_input.size(); ++l)
        ratios.push_back(cap.value_proj[l][0].norm(2, -1) / cap.block_input[l][0].norm(2, -1));
      relevance = bi_token_relevance(AttentionView::of(attention), to_array(torch::stack(ratios)),
                                     first_block(c.depth));
      for (double& v : relevance.data) v = std::abs(v);
    }
    const Array weight = path_gradient_weight(model, x, target);
    for (size_t e = 0; e < relevance.data.size(); ++e) relevance.data[e] *= weight.data[e];
    return patch_map(relevance, s_.query_row,
                     TokenLayout::resolve(c.tokens(), c.prefix_tokens(), c.grid_h(), c.grid_w()));
  }

  bool explains_text() const override { return true; }
  // The authors' BERT version (spec 16.5): the last layer alone (head-wise) or the last four (token-wise) by default,
  // the path scales the embedding layer's output, and the weight is the [CLS] row of W, applied to every row.
  std::vector<double> explain_text(const TextClassifier& model, const TextBatch& text,
                                   std::int64_t target) const override {
    const int L = model.config().num_layers;
    const int first = s_.bi_start_layer >= 0 ? s_.bi_start_layer : token_wise_ ? std::max(0, L - 4) : L - 1;
    if (first >= L)
      throw InputError("--bi-start-layer " + std::to_string(first) + " is out of range: the model has " +
                       std::to_string(L) + " layers (0-based)");
    const std::int64_t T = text.length();
    if (s_.query_row >= T) throw InputError("--query-row is out of range for this text");
    TextIntervention iv;
    iv.rules.record_values = token_wise_;
    const TextCapture cap = model.capture(text, {target}, TargetKind::Logit, iv);
    const Array attention = image_layers(cap.attention, 0);
    Array relevance;
    if (!token_wise_) {
      relevance = bi_head_relevance(AttentionView::of(attention), AttentionView::of(image_layers(cap.attention_grad, 0)),
                                    first);
    } else {
      std::vector<torch::Tensor> ratios;
      for (int l = 0; l < L; ++l)
        ratios.push_back(cap.value_proj[l][0].norm(2, -1) / cap.hidden_in[l][0].norm(2, -1));
      relevance = bi_token_relevance(AttentionView::of(attention), to_array(torch::stack(ratios)), first);
      for (double& v : relevance.data) v = std::abs(v);
    }
    // W's [CLS] row from the path alpha * e, e = the embedding layer's output (the input of layer 0).
    torch::Tensor embedded;
    {
      torch::NoGradGuard no_grad;
      embedded = model.embedding_output(text);
    }
    const torch::Tensor alphas = torch::linspace(0.0, 1.0, s_.steps, embedded.options());
    torch::Tensor sum;
    for (std::int64_t begin = 0; begin < s_.steps; begin += s_.batch) {
      const std::int64_t n = std::min<std::int64_t>(s_.batch, s_.steps - begin);
      const torch::Tensor x =
          (alphas.narrow(0, begin, n).view({n, 1, 1}) * embedded.expand({n, -1, -1})).detach().requires_grad_(true);
      TextCapture path;
      model.forward_from(x, text.attention_mask.repeat({n, 1}), 0, {}, &path).select(1, target).sum().backward();
      const torch::Tensor g = path.attention.back().grad().sum(0);
      sum = sum.defined() ? sum + g : g;
    }
    const Array weight = to_array((sum / static_cast<double>(s_.steps)).clamp_min(0).mean(0)[0]);  // [T]
    for (std::int64_t i = 0; i < T; ++i)
      for (std::int64_t j = 0; j < T; ++j) relevance.data[static_cast<size_t>(i * T + j)] *= weight.data[j];
    relevance.data[0] = 0.0;  // the reference's R[0, 0] <- 0
    const double* row = relevance.data.data() + static_cast<size_t>(s_.query_row) * T;
    return std::vector<double>(row, row + T);
  }

  double passes(const ImageModelConfig&) const override { return 3.0 * (1 + s_.steps); }

 private:
  // W = mean_h(max(0, (1/S) sum_alpha dy/dA_last(alpha x))), alpha = linspace(0, 1, S) with both ends: the average
  // gradient along the path, clamped per head, then averaged over heads (spec 16.2 step 3). [N, N]
  Array path_gradient_weight(const ImageClassifier& model, const torch::Tensor& x, std::int64_t target) const {
    const torch::Tensor alphas = torch::linspace(0.0, 1.0, s_.steps, x.options());
    torch::Tensor sum;
    for (std::int64_t begin = 0; begin < s_.steps; begin += s_.batch) {
      const std::int64_t n = std::min<std::int64_t>(s_.batch, s_.steps - begin);
      const torch::Tensor images = alphas.narrow(0, begin, n).view({n, 1, 1, 1}) * x;
      const ImageCapture cap = model.capture(images, std::vector<std::int64_t>(static_cast<size_t>(n), target));
      const torch::Tensor g = cap.attention_grad.back().sum(0);
      sum = sum.defined() ? sum + g : g;
    }
    return to_array((sum / static_cast<double>(s_.steps)).clamp_min(0).mean(0));
  }

  MethodSettings s_;
  bool token_wise_;
};

}  // namespace

std::unique_ptr<ModelExplanationMethod> make_bi_attn(const MethodSettings& s) {
  return std::make_unique<BeyondIntuition>(s, false);
}
std::unique_ptr<ModelExplanationMethod> make_bi_attn_token(const MethodSettings& s) {
  return std::make_unique<BeyondIntuition>(s, true);
}

}  // namespace attnlens
