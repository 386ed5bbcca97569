// Relevance propagation as modified gradients (spec 14, LXT's "efficient" AttnLRP and CP-LRP): one backward pass of
// the target logit through a model whose LayerNorms, activations and attention products carry the LRP rules
// (models/forward_rules.hpp), zennit's generalised Gamma on the patch embedding, feed-forward and head; the relevance
// of each pixel is input x gradient summed over the channels, and a patch's relevance is the sum over its pixels.
// LXT's ViT map is CP-LRP; AttnLRP's softmax rule on a ViT is a toolkit extension with no reference numbers.
#include <cmath>

#include "explain/model_method.hpp"
#include "models/arrays.hpp"

namespace attnlens {

namespace {

class Lrp : public ModelExplanationMethod {
 public:
  Lrp(const MethodSettings& s, LrpRules kind) : kind_(kind) {
    rules_.lrp = kind;
    rules_.gamma_conv = s.gamma_conv;
    rules_.gamma_linear = s.gamma_linear;
    rules_.gamma_attention_projections = s.gamma_attention_projections;
    if (!(s.gamma_conv >= 0 && std::isfinite(s.gamma_conv)))
      throw InputError("--gamma-conv must be a finite number >= 0 (0 = the plain z-rule)");
    if (!(s.gamma_linear >= 0 && std::isfinite(s.gamma_linear)))
      throw InputError("--gamma-linear must be a finite number >= 0 (0 = the plain z-rule)");
  }
  std::string name() const override { return kind_ == LrpRules::AttnLrp ? "attnlrp" : "cp-lrp"; }

  Array explain_image(const ImageClassifier& model, const torch::Tensor& image, std::int64_t target) const override {
    const ImageModelConfig& c = model.config();
    const torch::Tensor x = image.unsqueeze(0).to(model.device());
    const ImageCapture cap = model.capture(x, {target}, rules_);
    const std::int64_t p = c.patch_size;
    const torch::Tensor pixels = (x * cap.input_grad).sum(1)[0];  // [H, W], seeded with 1 on the logit
    return to_array(pixels.view({c.grid_h(), p, c.grid_w(), p}).sum({1, 3}));
  }

  double passes(const ImageModelConfig&) const override { return 3.0; }  // one forward, one (modified) backward

 private:
  LrpRules kind_;
  ForwardRules rules_;
};

}  // namespace

std::unique_ptr<ModelExplanationMethod> make_attnlrp(const MethodSettings& s) {
  return std::make_unique<Lrp>(s, LrpRules::AttnLrp);
}
std::unique_ptr<ModelExplanationMethod> make_cp_lrp(const MethodSettings& s) {
  return std::make_unique<Lrp>(s, LrpRules::Cp);
}

}  // namespace attnlens
