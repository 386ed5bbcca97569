// Attention rollout (Abnar & Zuidema; vit-explain; Chefer's baseline): spec section 1, computed by core/rollout.
#include <algorithm>

#include "explain/method.hpp"

namespace attnlens {

namespace {

class Rollout : public ExplanationMethod {
 public:
  explicit Rollout(const MethodSettings& s) : s_(s) {}
  std::string name() const override { return "rollout"; }
  bool uses_head_mean() const override { return s_.fusion == HeadFusion::Mean; }
  Array explain(const AttentionRecord& r) const override {
    RolloutOptions o;
    o.mode = s_.rollout_mode;
    o.fusion = s_.fusion;
    o.discard_ratio = s_.discard_ratio;
    o.residual = s_.residual;
    o.start_layer = s_.start_layer;
    o.prefix_tokens = r.layout.prefix;
    // Mean fusion of the head-mean matrices (one "head") is the head mean itself.
    const bool fused = uses_head_mean() && !r.head_mean.data.empty();
    const AttentionView view = AttentionView::of(fused ? r.head_mean : r.attention);
    if (s_.query_row == kColumnMax) {
      const Array joint = rollout(view, o);
      const std::int64_t n = joint.shape[2];
      Array last({n, n});
      std::copy(joint.data.end() - n * n, joint.data.end(), last.data.begin());
      return patch_map_of_vector(column_max(last), r.layout);
    }
    return patch_map_of_vector(rollout_row(view, o, s_.query_row), r.layout);
  }

 private:
  MethodSettings s_;
};

}  // namespace

std::unique_ptr<ExplanationMethod> make_rollout(const MethodSettings& s) { return std::make_unique<Rollout>(s); }

}  // namespace attnlens
