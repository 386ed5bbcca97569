// Attention flow (Abnar & Zuidema, spec 3.1) and the input-to-output variant after Metzger et al. (spec 3.2).
#include "core/attention_flow.hpp"
#include "explain/method.hpp"

namespace attnlens {

namespace {

class Flow : public ExplanationMethod {
 public:
  Flow(const MethodSettings& s, bool metzger) : s_(s), metzger_(metzger) {}
  std::string name() const override { return metzger_ ? "flow-metzger" : "flow"; }
  Array explain(const AttentionRecord& r) const override {
    const Array caps = flow_capacities(AttentionView::of(r.attention), s_.residual);
    const int layers = static_cast<int>(caps.shape[0]);
    const Array flows = metzger_ ? metzger_flow(caps, s_.query_row, MetzgerForm::PerToken)
                                 : attention_flow_from(caps, layers, s_.query_row);
    return patch_map_of_vector(flows, r.layout);
  }

 private:
  MethodSettings s_;
  bool metzger_;
};

}  // namespace

std::unique_ptr<ExplanationMethod> make_flow(const MethodSettings& s) { return std::make_unique<Flow>(s, false); }
std::unique_ptr<ExplanationMethod> make_flow_metzger(const MethodSettings& s) {
  return std::make_unique<Flow>(s, true);
}

}  // namespace attnlens
