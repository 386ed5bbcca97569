// Gradient attention rollout (jacobgil/vit-explain, spec 2): class-specific, from attention and its gradients.
#include "core/gradient_methods.hpp"
#include "explain/method.hpp"

namespace attnlens {

namespace {

class GradRollout : public ExplanationMethod {
 public:
  explicit GradRollout(const MethodSettings& s) : s_(s) {}
  std::string name() const override { return "grad-rollout"; }
  bool needs_gradients() const override { return true; }
  Array explain(const AttentionRecord& r) const override {
    GradRolloutOptions o;
    o.mode = s_.reference ? GradRolloutMode::VitExplainReference : GradRolloutMode::Fixed;
    o.discard_ratio = s_.grad_discard_ratio;
    o.prefix_tokens = r.layout.prefix;
    // The reference's hook saw the gradient of the pre-softmax scores; the fixed form uses d/dA.
    const Array& gradient = s_.reference ? r.scores_grad : r.attention_grad;
    return patch_map_of_vector(
        grad_rollout_row(AttentionView::of(r.attention), AttentionView::of(gradient), o, s_.query_row), r.layout);
  }

 private:
  MethodSettings s_;
};

}  // namespace

std::unique_ptr<ExplanationMethod> make_grad_rollout(const MethodSettings& s) {
  return std::make_unique<GradRollout>(s);
}

}  // namespace attnlens
