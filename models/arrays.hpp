// The hand-over from LibTorch tensors to the plain double Arrays of the LibTorch-free layers (core, explain).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// A tensor's values as a double Array of the same shape (copied to the CPU).
Array to_array(const torch::Tensor& tensor);

/// Item b of per-layer batch tensors ([B, ...] each, e.g. a capture's attention) as one double Array [L, ...],
/// converted in a single pass (no stacked intermediate).
Array image_layers(const std::vector<torch::Tensor>& per_layer, std::int64_t b);

/// Item b of per-layer attention [B, H, N, N] averaged over heads in float32 before the conversion: [L, N, N], 1/H
/// of the data. What head-mean rollout and flow need; the conversion is most of what they cost beyond the model.
Array image_layers_head_mean(const std::vector<torch::Tensor>& per_layer, std::int64_t b);

}  // namespace attnlens
ATTNLENS_API_END
