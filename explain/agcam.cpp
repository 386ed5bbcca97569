// AG-CAM, attention-guided CAM (Leem & Seo, AAAI 2024; spec 17): the query row's positive attention gradients,
// taken in a model whose attention inputs are detached, weighted by the sigmoid of the pre-softmax scores and
// summed over heads and layers.
#include "core/gradient_methods.hpp"
#include "explain/model_method.hpp"
#include "models/arrays.hpp"

namespace attnlens {

namespace {

class AgCam : public ModelExplanationMethod {
 public:
  explicit AgCam(const MethodSettings& s) : row_(s.query_row) {}
  std::string name() const override { return "agcam"; }
  void check(const ImageModelConfig& c) const override {
    ModelExplanationMethod::check(c);
    if (row_ >= c.tokens()) throw InputError("--query-row is out of range for this model");
  }
  Array explain_image(const ImageClassifier& model, const torch::Tensor& image, std::int64_t target) const override {
    ForwardRules rules;
    rules.detach_attention_input = true;  // the authors' "dE/dE = I": gradients reach A only through the stream
    rules.record_scores = true;
    const ImageCapture cap = model.capture(image.unsqueeze(0), {target}, rules);
    const ImageModelConfig& c = model.config();
    const Array scores = image_layers(cap.scores, 0), gradient = image_layers(cap.attention_grad, 0);
    return patch_map_of_vector(agcam_row(AttentionView::of(scores), AttentionView::of(gradient), row_),
                               TokenLayout::resolve(c.tokens(), c.prefix_tokens(), c.grid_h(), c.grid_w()));
  }
  bool explains_text() const override { return true; }
  std::vector<double> explain_text(const TextClassifier& model, const TextBatch& text,
                                   std::int64_t target) const override {
    TextIntervention iv;
    iv.rules.detach_attention_input = true;
    iv.rules.record_scores = true;
    const TextCapture cap = model.capture(text, {target}, TargetKind::Logit, iv);
    if (row_ >= text.length()) throw InputError("--query-row is out of range for this text");
    const Array scores = image_layers(cap.scores, 0), gradient = image_layers(cap.attention_grad, 0);
    return agcam_row(AttentionView::of(scores), AttentionView::of(gradient), row_).data;
  }

  double passes(const ImageModelConfig&) const override { return 3.0; }  // one forward, one backward

 private:
  int row_;
};

}  // namespace

std::unique_ptr<ModelExplanationMethod> make_agcam(const MethodSettings& s) { return std::make_unique<AgCam>(s); }

}  // namespace attnlens
