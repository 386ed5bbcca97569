// Relevance propagation as modified gradients (spec 14, LXT's "efficient" AttnLRP and CP-LRP): one backward pass of
// the target logit through a model whose LayerNorms, activations and attention products carry the LRP rules
// (models/forward_rules.hpp), zennit's generalised Gamma on the patch embedding, feed-forward and head; the relevance
// of each pixel is input x gradient summed over the channels, and a patch's relevance is the sum over its pixels.
// LXT's ViT map is CP-LRP; AttnLRP's softmax rule on a ViT is a toolkit extension with no reference numbers. On text,
// AttnLRP is LXT's BERT map and CP-LRP (which LXT has for ViT only) the same with q and k detached. --lrp-epsilon
// turns the z-rule of the linear layers without Gamma into the paper's ε-rule (spec 14.10.1), on images and text.
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
    rules_.epsilon = s.lrp_epsilon;
    if (!(s.gamma_conv >= 0 && std::isfinite(s.gamma_conv)))
      throw InputError("--gamma-conv must be a finite number >= 0 (0 = the plain z-rule)");
    if (!(s.gamma_linear >= 0 && std::isfinite(s.gamma_linear)))
      throw InputError("--gamma-linear must be a finite number >= 0 (0 = the plain z-rule)");
    if (!(s.lrp_epsilon >= 0 && std::isfinite(s.lrp_epsilon)))
      throw InputError("--lrp-epsilon must be a finite number >= 0 (0 = the plain z-rule)");
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

  bool explains_text() const override { return true; }
  // LXT's BERT map (spec 14.4): the same rules, no Gamma; the relevance is read at the word embeddings, whose share of
  // the embedding sum word + position (+ type) is word ⊙ gradient (the sum's addends all see its gradient).
  std::vector<double> explain_text(const TextClassifier& model, const TextBatch& text,
                                   std::int64_t target) const override {
    TextIntervention iv;
    iv.rules.lrp = kind_;
    iv.rules.epsilon = rules_.epsilon;
    const torch::Tensor sum = model.embed(text).detach().requires_grad_(true);
    model.classify_embeddings(sum, text.attention_mask, iv)[0][target].backward();
    const torch::Tensor scores = (model.word_embeddings(text) * sum.grad()).sum(-1)[0];
    return to_array(scores).data;
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
