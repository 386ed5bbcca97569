#include "eval/fgsm.hpp"

#include <algorithm>
#include <cmath>

#include "core/array.hpp"
#include "eval/metrics.hpp"
#include "explain/image_explainer.hpp"
#include "models/arrays.hpp"

namespace attnlens {

std::vector<FgsmResult> masked_fgsm(const ImageClassifier& model, const torch::Tensor& images,
                                    const torch::Tensor& masks, const InputSpace& space, const FgsmSettings& s) {
  if (images.dim() != 4 || masks.dim() != 3 || masks.size(0) != images.size(0) || masks.size(1) != images.size(2) ||
      masks.size(2) != images.size(3))
    throw InputError("fgsm: images must be [B,3,H,W] and masks [B,H,W]");
  if (!(s.epsilon > 0.0) || s.max_iterations < 1) throw InputError("fgsm: --eps must be > 0 and --max-iter >= 1");
  const torch::Device device = model.device();
  const std::int64_t B = images.size(0);
  torch::Tensor x = space.to_pixels(images.to(torch::kFloat32)).clamp(0.0, 1.0).to(device);
  const torch::Tensor mask = masks.to(torch::kFloat32).unsqueeze(1).to(device);
  const torch::Tensor original = model.forward(space.from_pixels(x)).argmax(1);
  if (s.target >= model.config().num_classes) throw InputError("fgsm: --target is out of range for this model");
  const torch::Tensor goal = s.target >= 0 ? torch::full({B}, s.target, torch::kInt64).to(device) : original;

  std::vector<FgsmResult> results(B);
  std::vector<std::int64_t> active;
  for (std::int64_t b = 0; b < B; ++b) {
    results[b].original = original[b].item<std::int64_t>();
    results[b].final_class = results[b].original;
    if (s.target >= 0 && results[b].original == s.target) {
      results[b].success = true;  // already the target: nothing to do
    } else {
      active.push_back(b);
    }
  }
  const double direction = s.target >= 0 ? -1.0 : 1.0;
  // Iteration `it` first checks the prediction after it steps, then takes step it + 1: the forward pass that checks
  // one step is the one the next step differentiates, so each step costs one forward and one backward.
  for (int it = 0; it <= s.max_iterations && !active.empty(); ++it) {
    const auto index = torch::tensor(active, torch::kInt64).to(device);
    auto xa = x.index_select(0, index).detach().requires_grad_(true);
    const auto logits = model.differentiable_forward(space.from_pixels(xa));
    const auto predicted = logits.detach().argmax(1).cpu();
    std::vector<std::int64_t> still, rows;
    for (std::size_t i = 0; i < active.size(); ++i) {
      FgsmResult& r = results[active[i]];
      r.final_class = predicted[static_cast<std::int64_t>(i)].item<std::int64_t>();
      r.iterations = it;
      r.success = s.target >= 0 ? r.final_class == s.target : r.final_class != r.original;
      if (!r.success) still.push_back(active[i]), rows.push_back(static_cast<std::int64_t>(i));
    }
    if (still.empty() || it == s.max_iterations) break;
    const auto row_index = torch::tensor(rows, torch::kInt64).to(device);
    const auto still_index = torch::tensor(still, torch::kInt64).to(device);
    // Each image's loss term depends on its own pixels only, so the summed loss gives every image its own gradient.
    torch::nn::functional::cross_entropy(logits.index_select(0, row_index), goal.index_select(0, still_index),
                                         torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
        .backward();
    {
      torch::NoGradGuard no_grad;
      const auto grad = xa.grad().index_select(0, row_index);
      const auto stepped = (xa.detach().index_select(0, row_index) +
                            direction * s.epsilon * mask.index_select(0, still_index) * grad.sign())
                               .clamp(0.0, 1.0);
      x.index_copy_(0, still_index, stepped);
    }
    active = std::move(still);
  }
  const torch::Tensor cpu = x.cpu();
  for (std::int64_t b = 0; b < B; ++b) results[b].adversarial = cpu[b].clone();
  return results;
}

namespace {

/// Patches chosen (or all but them, for the complement) as a pixel mask [H,W] of 0/1.
torch::Tensor pixel_mask(const std::vector<int>& chosen, bool complement, const ImageModelConfig& c) {
  auto grid = torch::full({c.grid_h() * c.grid_w()}, complement ? 1.0f : 0.0f);
  for (int p : chosen) grid[p] = complement ? 0.0f : 1.0f;
  return patch_pixels(grid.reshape({c.grid_h(), c.grid_w()}), c.patch_size);
}

}  // namespace

FgsmStudy::FgsmStudy(const ImageClassifier& model, const InputSpace& space, const FgsmStudySettings& s)
    : model_(model), space_(space), settings_(s) {
  if (!(s.area > 0.0 && s.area < 1.0)) throw InputError("--area must be in (0, 1)");
  for (const auto& r : s.regions)
    if (r != "inside" && r != "outside" && r != "random")
      throw InputError("unknown region '" + r + "' (known: inside, outside, random)");
  const bool method_regions =
      std::any_of(s.regions.begin(), s.regions.end(), [](const std::string& r) { return r != "random"; });
  if (method_regions)
    for (const auto& name : s.methods) {
      if (name == "heads") throw InputError("method heads gives one map per head; choose a single-map method");
      methods_.push_back(make_method(name, MethodSettings{}));
      gradients_ |= methods_.back()->needs_gradients();
    }
  const ImageModelConfig& c = model.config();
  if (c.num_classes == 0) throw InputError("the attack needs a classifier; this model is a backbone");
  if (s.attack.target >= c.num_classes) throw InputError("--target is out of range for this model");
  k_ = top_k_count(static_cast<std::size_t>(c.grid_h() * c.grid_w()), s.area);
  for (const auto& m : methods_)
    for (const auto& r : s.regions)
      if (r != "random") arms_.push_back({m->name(), r});
  if (std::find(s.regions.begin(), s.regions.end(), "random") != s.regions.end()) arms_.push_back({"-", "random"});
}

std::vector<FgsmArmBatch> FgsmStudy::attack(const torch::Tensor& images, std::size_t first_index) const {
  const ImageModelConfig& c = model_.config();
  const TokenLayout layout = token_layout(c);
  const auto n = static_cast<std::size_t>(images.size(0));
  // Top-k patch sets per method and image, from one capture (every method reads the full attention).
  std::vector<std::vector<std::vector<int>>> top(methods_.size());
  if (!methods_.empty()) {
    const ImageCapture cap =
        model_.capture(images, gradients_ ? std::vector<std::int64_t>(n, -1) : std::vector<std::int64_t>{});
    for (std::size_t b = 0; b < n; ++b) {
      AttentionRecord record;
      record.layout = layout;
      record.attention = image_layers(cap.attention, static_cast<std::int64_t>(b));
      if (gradients_) {
        record.attention_grad = image_layers(cap.attention_grad, static_cast<std::int64_t>(b));
        record.scores_grad = image_layers(cap.scores_grad, static_cast<std::int64_t>(b));
      }
      for (std::size_t m = 0; m < methods_.size(); ++m) {
        const std::vector<int> order = descending_order(methods_[m]->explain(record).data);
        top[m].emplace_back(order.begin(), order.begin() + k_);
      }
    }
  }
  std::vector<FgsmArmBatch> out;
  for (const FgsmArm& arm : arms_) {
    std::vector<torch::Tensor> masks;
    const auto m = static_cast<std::size_t>(
        std::find_if(methods_.begin(), methods_.end(), [&](const auto& x) { return x->name() == arm.method; }) -
        methods_.begin());
    for (std::size_t b = 0; b < n; ++b) {
      if (arm.region == "random") {
        const std::vector<int> order =
            descending_order(random_map(c.grid_h(), c.grid_w(), settings_.seed, first_index + b).data);
        masks.push_back(pixel_mask({order.begin(), order.begin() + k_}, false, c));
      } else {
        masks.push_back(pixel_mask(top[m][b], arm.region == "outside", c));
      }
    }
    FgsmArmBatch batch;
    batch.masks = torch::stack(masks);
    batch.results = masked_fgsm(model_, images, batch.masks, space_, settings_.attack);
    out.push_back(std::move(batch));
  }
  return out;
}

void FgsmArmSummary::add(const FgsmResult& r, int max_iterations) {
  iterations.push_back(r.success ? r.iterations : max_iterations + 1);
  successes += r.success ? 1 : 0;
}

double FgsmArmSummary::success_rate() const {
  return iterations.empty() ? NAN : static_cast<double>(successes) / static_cast<double>(iterations.size());
}

double FgsmArmSummary::median_iterations() const {
  if (iterations.empty()) return NAN;
  std::vector<double> v = iterations;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<double> FgsmArmSummary::iterations_of_successes(int max_iterations) const {
  std::vector<double> wins;
  for (double v : iterations)
    if (v < max_iterations + 1) wins.push_back(v);
  return wins;
}

}  // namespace attnlens
