// What every model family needs to read a checkpoint: config.json beside the weights, label names, and tensors
// checked against the shape the architecture expects (a mis-shaped or non-finite tensor is an error naming it).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../io/model_config.hpp"
#include "../io/safetensors.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// The weights file named by a model path: `path` itself, or model.safetensors inside a folder. InputError when
/// it does not exist.
std::string resolve_weights_path(const std::string& path);

/// "[2,3]" for messages.
std::string shape_text(const std::vector<std::int64_t>& shape);

// config.json reading (read_config_json, read_config_key, read_config_labels) lives in io/model_config.hpp,
// without LibTorch, so that it can be fuzzed and tested on its own.

/// Tensor `name` of `file` as float32 on the CPU, checked against `shape` (-1 = any extent) and for NaN/Inf.
torch::Tensor load_checked_tensor(const SafetensorsFile& file, const std::string& name,
                                  const std::vector<std::int64_t>& shape, const std::string& file_name);

/// Moves the model's tensors to `device`; InputError when CUDA is asked for and not available.
void check_device(const torch::Device& device);

}  // namespace attnlens
ATTNLENS_API_END
