// Attention rollout (Abnar & Zuidema; vit-explain; Chefer's baseline): spec section 1, computed by core/rollout.
#include "explain/method.hpp"

namespace attnlens {

namespace {

class Rollout : public ExplanationMethod {
 public:
  explicit Rollout(const MethodSettings& s) : s_(s) {}
  std::string name() const override { return "rollout"; }
  Array explain(const AttentionRecord& r) const override {
    RolloutOptions o;
    o.mode = s_.rollout_mode;
    o.fusion = s_.fusion;
    o.discard_ratio = s_.discard_ratio;
    o.residual = s_.residual;
    o.start_layer = s_.start_layer;
    o.prefix_tokens = r.layout.prefix;
    return patch_map_of_vector(rollout_row(AttentionView::of(r.attention), o, s_.query_row), r.layout);
  }

 private:
  MethodSettings s_;
};

}  // namespace

std::unique_ptr<ExplanationMethod> make_rollout(const MethodSettings& s) { return std::make_unique<Rollout>(s); }

}  // namespace attnlens
