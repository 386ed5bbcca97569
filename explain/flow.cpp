// Attention flow (Abnar & Zuidema, spec 3.1) and the input-to-output variant after Metzger et al. (spec 3.2).
#include "core/attention_flow.hpp"
#include "explain/method.hpp"

namespace attnlens {

namespace {

class Flow : public ExplanationMethod {
 public:
  Flow(const MethodSettings& s, bool metzger) : s_(s), metzger_(metzger) {}
  std::string name() const override { return metzger_ ? "flow-metzger" : "flow"; }
  bool uses_head_mean() const override { return true; }  // capacities are the head mean
  Array explain(const AttentionRecord& r) const override {
    const Array caps =
        flow_capacities(AttentionView::of(r.head_mean.data.empty() ? r.attention : r.head_mean), s_.residual);
    const int layers = static_cast<int>(caps.shape[0]);
    if (s_.query_row == kColumnMax && !metzger_) {
      // Abnar & Zuidema's SST relevance: every final-layer node's flows, each row divided by its sum (as
      // compute_node_flow does), then the maximum over rows.
      const std::int64_t n = caps.shape[1];
      Array rows({n, n});
      for (std::int64_t q = 0; q < n; ++q) {
        const Array f = attention_flow_from(caps, layers, static_cast<int>(q));
        double total = 0;
        for (double v : f.data) total += v;
        for (std::int64_t k = 0; k < n; ++k) rows.data[q * n + k] = total > 0 ? f.data[k] / total : 0.0;
      }
      return patch_map_of_vector(column_max(rows), r.layout);
    }
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
