// AtMan, attention manipulation (Deiseroth et al., NeurIPS 2023; spec 18, mapped to classifiers as 18.5): for each
// explained token (an image's patches, a text's tokens), one forward pass in which every layer, head and query row
// scales that token's key column (after shifting the row's scores to be >= 0) by the suppression factor; the token's
// relevance is how much the explained class's cross-entropy rises. With the conceptual neighbourhood, tokens whose
// embeddings resemble the explained one are suppressed with it, less the less they resemble it. No backward pass;
// the passes run in batches.
#include <cmath>
#include <functional>

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
  bool explains_text() const override { return true; }

  Array explain_image(const ImageClassifier& model, const torch::Tensor& image, std::int64_t target) const override {
    const ImageModelConfig& c = model.config();
    const torch::Tensor x = image.unsqueeze(0).to(model.device());
    torch::Tensor logits, embeddings;
    if (neighbours()) {  // the tokens entering the first block
      ForwardRules record;
      record.record_values = true;
      const ImageCapture cap = model.capture(x, {}, record);
      logits = cap.logits;
      embeddings = cap.block_input[0][0];
    } else {
      logits = model.forward(x);
    }
    const auto run = [&](const torch::Tensor& factors) {
      ForwardRules rules;
      rules.key_factors = factors.to(model.device());
      return model.forward(x.expand({factors.size(0), -1, -1, -1}), rules);
    };
    const std::vector<double> delta = scores(logits, embeddings, c.prefix_tokens(), c.tokens(), target, run);
    Array out({c.grid_h(), c.grid_w()});
    out.data = delta;
    return out;
  }

  std::vector<double> explain_text(const TextClassifier& model, const TextBatch& text,
                                   std::int64_t target) const override {
    const std::int64_t T = text.length();
    torch::Tensor logits, embeddings;
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor e = model.embedding_output(text);  // the input of layer 0
      logits = model.forward_from(e, text.attention_mask, 0);
      embeddings = e[0];
    }
    const auto run = [&](const torch::Tensor& factors) {
      const std::int64_t n = factors.size(0);
      TextBatch copies{text.input_ids.repeat({n, 1}), text.token_type_ids.repeat({n, 1}),
                       text.attention_mask.repeat({n, 1})};
      TextIntervention iv;
      iv.rules.key_factors = factors.to(model.device());
      return model.forward(copies, iv);
    };
    return scores(logits, neighbours() ? embeddings : torch::Tensor(), 0, T, target, run);
  }

  double passes(const ImageModelConfig& c) const override { return 1.0 + c.grid_h() * c.grid_w(); }

 private:
  bool neighbours() const { return !std::isnan(s_.atman_threshold); }

  // Δ for tokens first..n-1: the clean pass's logits, the embeddings for the neighbourhood (undefined: none), and a
  // pass over a batch of key-factor rows [b, n].
  std::vector<double> scores(const torch::Tensor& clean_logits, const torch::Tensor& embeddings, std::int64_t first,
                             std::int64_t n, std::int64_t target,
                             const std::function<torch::Tensor(const torch::Tensor&)>& run) const {
    const double clean =
        torch::log_softmax(clean_logits.to(torch::kCPU, torch::kFloat64), 1)[0][target].item<double>();
    const torch::Tensor factors = key_factors(embeddings, first, n);
    std::vector<double> out;
    for (std::int64_t begin = 0; begin < factors.size(0); begin += s_.batch) {
      const std::int64_t b = std::min<std::int64_t>(s_.batch, factors.size(0) - begin);
      torch::Tensor logp;
      {
        torch::NoGradGuard no_grad;
        logp = torch::log_softmax(run(factors.narrow(0, begin, b)).to(torch::kCPU, torch::kFloat64), 1);
      }
      for (std::int64_t i = 0; i < b; ++i) {
        // CE(suppressed) - CE(clean) > 0 where the token mattered; the reference code reports the negative.
        const double delta = clean - logp[i][target].item<double>();
        out.push_back(s_.reference ? -delta : delta);
      }
    }
    return out;
  }

  // One row per explained token k: k at m, and with the neighbourhood each other token j whose cosine similarity
  // (float32, as the reference computes it) reaches the threshold at (1 - m)(1 - cos) + m (spec 18.2).
  torch::Tensor key_factors(const torch::Tensor& embeddings, std::int64_t first, std::int64_t n) const {
    const float m = static_cast<float>(s_.atman_factor), threshold = static_cast<float>(s_.atman_threshold);
    torch::Tensor cos;
    if (embeddings.defined()) {
      const torch::Tensor e = embeddings.to(torch::kCPU, torch::kFloat32);
      const torch::Tensor unit = e / e.norm(2, -1, true).clamp_min(1e-8);
      cos = unit.matmul(unit.t()).clamp(-1.0, 1.0).contiguous();
    }
    torch::Tensor factors = torch::ones({n - first, n}, torch::kFloat32);
    auto f = factors.accessor<float, 2>();
    for (std::int64_t k = first; k < n; ++k) {
      if (cos.defined()) {
        const auto c = cos.accessor<float, 2>();
        for (std::int64_t j = 0; j < n; ++j)
          if (j != k && c[k][j] >= threshold) f[k - first][j] = (1.0f - m) * (1.0f - c[k][j]) + m;
      }
      f[k - first][k] = m;
    }
    return factors;
  }

  MethodSettings s_;
};

}  // namespace

std::unique_ptr<ModelExplanationMethod> make_atman(const MethodSettings& s) { return std::make_unique<AtMan>(s); }

}  // namespace attnlens
