// Grad-SAM (Barkan et al., CIKM 2021; spec 20): attention weighted by its positive gradient, averaged over layers,
// heads and query rows, one score per key token (--grad-sam-axis rows: over keys, one per query token).
#include "core/gradient_methods.hpp"
#include "explain/method.hpp"

namespace attnlens {

namespace {

class GradSam : public ExplanationMethod {
 public:
  explicit GradSam(const MethodSettings& s) : axis_(parse_grad_sam_axis(s.grad_sam_axis)) {}
  std::string name() const override { return "grad-sam"; }
  bool needs_gradients() const override { return true; }
  Array explain(const AttentionRecord& r) const override {
    return patch_map_of_vector(
        grad_sam(AttentionView::of(r.attention), AttentionView::of(r.attention_grad), axis_), r.layout);
  }

 private:
  GradSamAxis axis_;
};

}  // namespace

std::unique_ptr<ExplanationMethod> make_grad_sam(const MethodSettings& s) { return std::make_unique<GradSam>(s); }

}  // namespace attnlens
