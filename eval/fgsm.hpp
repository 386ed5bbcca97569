// FGSM restricted to a mask (spec 8.3): iterated signed-gradient steps on the pixels inside a mask only, until the
// prediction changes (untargeted) or becomes the target class (targeted). Tests whether the region an explanation
// points at is where the model is most easily fooled.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "eval/perturbation.hpp"
#include "models/vit.hpp"

namespace attnlens {

struct FgsmSettings {
  double epsilon = 1.0 / 255.0;  ///< step in pixel units ([0,1] scale)
  int max_iterations = 100;
  std::int64_t target = -1;  ///< -1: untargeted (move away from the original prediction)
};

struct FgsmResult {
  bool success = false;
  int iterations = 0;         ///< steps taken (max_iterations when it failed); 0 when nothing had to change
  std::int64_t original = 0;  ///< the prediction before the attack
  std::int64_t final_class = 0;
  torch::Tensor adversarial;  ///< [3,H,W] pixels in [0,1]
};

/// Attacks every image of `images` (normalised, [B,3,H,W]) at once, each inside its own mask [B,H,W] (1 = may
/// change): x <- clip(x + eps * M * sign(grad_x CE(f(x), y0)), 0, 1) untargeted, or x <- clip(x - eps * M *
/// sign(grad_x CE(f(x), t)), 0, 1) targeted, in pixel space with the normalisation inside the model. An image stops
/// as soon as it succeeds; only the images still running go through the model.
std::vector<FgsmResult> masked_fgsm(const VisionTransformer& model, const torch::Tensor& images,
                                    const torch::Tensor& masks, const InputSpace& space, const FgsmSettings& settings);

}  // namespace attnlens
