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
    return patch_map_of_vector(chefer_relevance_row(AttentionView::of(r.attention), AttentionView::of(r.attention_grad),
                                                    s_.query_row, s_.start_layer),
                               r.layout);
  }

 private:
  MethodSettings s_;
};

}  // namespace

std::unique_ptr<ExplanationMethod> make_chefer(const MethodSettings& s) { return std::make_unique<Chefer>(s); }

}  // namespace attnlens
