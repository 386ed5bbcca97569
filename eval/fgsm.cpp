#include "eval/fgsm.hpp"

#include "core/array.hpp"

namespace attnlens {

std::vector<FgsmResult> masked_fgsm(const VisionTransformer& model, const torch::Tensor& images,
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

}  // namespace attnlens
