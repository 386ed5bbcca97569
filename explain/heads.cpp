// DINO-style per-head maps (spec 7): the explained token's attention in each head of one layer, [H, gh, gw].
#include "core/heads.hpp"
#include "explain/method.hpp"

#include "core/stack_methods.hpp"

namespace attnlens {

namespace {

class Heads : public ExplanationMethod {
 public:
  explicit Heads(const MethodSettings& s) : s_(s) {}
  std::string name() const override { return "heads"; }
  Array explain(const AttentionRecord& r) const override {
    const AttentionView view = AttentionView::of(r.attention);
    const int layer = resolve_layer(s_.layer, view.layers, "--layer");
    return head_maps(view, layer, s_.query_row, r.layout);
  }

 private:
  MethodSettings s_;
};

}  // namespace

std::unique_ptr<ExplanationMethod> make_heads(const MethodSettings& s) { return std::make_unique<Heads>(s); }

}  // namespace attnlens
