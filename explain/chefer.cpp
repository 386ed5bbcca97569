// Chefer et al. 2021, generic attention-model explainability (spec 4.1): R <- R + mean_h(max(0, dA * A)) R.
#include "core/gradient_methods.hpp"
#include "explain/method.hpp"

namespace attnlens {

namespace {

class Chefer : public ExplanationMethod {
 public:
  explicit Chefer(const MethodSettings& s) : s_(s) {}
  std::string name() const override { return "chefer"; }
  bool needs_gradients() const override { return true; }
  Array explain(const AttentionRecord& r) const override {
    const Array relevance =
        chefer_relevance(AttentionView::of(r.attention), AttentionView::of(r.attention_grad), s_.start_layer);
    return patch_map(relevance, s_.query_row, r.layout);
  }

 private:
  MethodSettings s_;
};

}  // namespace

std::unique_ptr<ExplanationMethod> make_chefer(const MethodSettings& s) { return std::make_unique<Chefer>(s); }

}  // namespace attnlens
