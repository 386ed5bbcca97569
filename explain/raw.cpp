// Raw attention: one layer's heads fused, the explained token's row over the patches.
#include "explain/method.hpp"

#include "core/stack_methods.hpp"

namespace attnlens {

namespace {

class RawAttention : public ExplanationMethod {
 public:
  explicit RawAttention(const MethodSettings& s) : s_(s) {}
  std::string name() const override { return "raw"; }
  Array explain(const AttentionRecord& r) const override {
    const AttentionView view = AttentionView::of(r.attention);
    const int layer = resolve_layer(s_.layer, view.layers, "--layer");
    AttentionView one = view;
    one.data = view.matrix(layer, 0);
    one.layers = 1;
    const Array fused = fuse_heads(one, s_.fusion);
    if (s_.query_row == kColumnMax) return patch_map_of_vector(column_max(fused), r.layout);
    return patch_map(fused, s_.query_row, r.layout);
  }

 private:
  MethodSettings s_;
};

}  // namespace

std::unique_ptr<ExplanationMethod> make_raw(const MethodSettings& s) { return std::make_unique<RawAttention>(s); }

}  // namespace attnlens
