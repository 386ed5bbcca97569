// AtMan, attention manipulation (Deiseroth et al., NeurIPS 2023; spec 18, mapped to a classifier as 18.5): for each
// patch, one forward pass in which every layer, head and query row scales that patch's key column (after shifting
// the row's scores to be >= 0) by the suppression factor; the patch's relevance is how much the explained class's
// cross-entropy rises. With the conceptual neighbourhood, tokens whose embeddings resemble the patch's are suppressed
// with it, less the less they resemble it. No backward pass; the passes run in batches.
#include <cmath>

#include "explain/model_method.hpp"
#include "models/arrays.hpp"

namespace attnlens {

namespace {

class AtMan : public ModelExplanationMethod {
 public:
  explicit AtMan(const MethodSettings& s) : s_(s) {
    if (!(s.atman_factor >= 0 && s.atman_factor <= 1)) throw InputError("--atman-factor must be in [0, 1]");
    if (!std::isnan(s.atman_threshold) && !(s.atman_threshold >= 0 && s.atman_threshold <= 1))
      throw InputError("--atman-threshold must be in [0, 1] (or none)");
  }
  std::string name() const override { return "atman"; }

  Array explain_image(const ImageClassifier& model, const torch::Tensor& image, std::int64_t target) const override {
    const ImageModelConfig& c = model.config();
    const std::int64_t N = c.tokens(), P = c.prefix_tokens(), G = N - P;
    const torch::Tensor x = image.unsqueeze(0).to(model.device());
    const bool neighbours = !std::isnan(s_.atman_threshold);
    torch::Tensor logits, similarity;
    if (neighbours) {
      // The cosine similarity of the tokens entering the first block, in float32 as the reference computes it.
      ForwardRules record;
      record.record_values = true;
      const ImageCapture cap = model.capture(x, {}, record);
      logits = cap.logits;
      const torch::Tensor e = cap.block_input[0][0].to(torch::kCPU, torch::kFloat32);
      const torch::Tensor unit = e / e.norm(2, -1, true).clamp_min(1e-8);
      similarity = unit.matmul(unit.t()).clamp(-1.0, 1.0).contiguous();
    } else {
      logits = model.forward(x);
    }
    const double clean = torch::log_softmax(logits.to(torch::kCPU, torch::kFloat64), 1)[0][target].item<double>();

    // One row of key factors per patch: the patch at m, each neighbour j at (1 - m)(1 - cos) + m.
    const float m = static_cast<float>(s_.atman_factor), threshold = static_cast<float>(s_.atman_threshold);
    torch::Tensor factors = torch::ones({G, N}, torch::kFloat32);
    auto f = factors.accessor<float, 2>();
    for (std::int64_t g = 0; g < G; ++g) {
      const std::int64_t k = P + g;
      if (neighbours) {
        const auto cos = similarity.accessor<float, 2>();
        for (std::int64_t j = 0; j < N; ++j)
          if (j != k && cos[k][j] >= threshold) f[g][j] = (1.0f - m) * (1.0f - cos[k][j]) + m;
      }
      f[g][k] = m;
    }
    Array out({c.grid_h(), c.grid_w()});
    for (std::int64_t begin = 0; begin < G; begin += s_.batch) {
      const std::int64_t n = std::min<std::int64_t>(s_.batch, G - begin);
      ForwardRules rules;
      rules.key_factors = factors.narrow(0, begin, n).to(model.device());
      const torch::Tensor logp =
          torch::log_softmax(model.forward(x.expand({n, -1, -1, -1}), rules).to(torch::kCPU, torch::kFloat64), 1);
      for (std::int64_t i = 0; i < n; ++i) {
        // CE(suppressed) - CE(clean) > 0 where the patch mattered; the reference code reports the negative.
        const double delta = clean - logp[i][target].item<double>();
        out.data[static_cast<size_t>(begin + i)] = s_.reference ? -delta : delta;
      }
    }
    return out;
  }

  double passes(const ImageModelConfig& c) const override { return 1.0 + c.grid_h() * c.grid_w(); }

 private:
  MethodSettings s_;
};

}  // namespace

std::unique_ptr<ModelExplanationMethod> make_atman(const MethodSettings& s) { return std::make_unique<AtMan>(s); }

}  // namespace attnlens
