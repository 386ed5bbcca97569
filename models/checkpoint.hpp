// What every model family needs to read a checkpoint: config.json beside the weights, label names, and tensors
// checked against the shape the architecture expects (a mis-shaped or non-finite tensor is an error naming it).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/safetensors.hpp"

namespace attnlens {

/// The weights file named by a model path: `path` itself, or model.safetensors inside a folder. InputError when
/// it does not exist.
std::string resolve_weights_path(const std::string& path);

/// "[2,3]" for messages.
std::string shape_text(const std::vector<std::int64_t>& shape);

/// The JSON object in `path`, or nullopt when the file does not exist. InputError for invalid JSON or a non-object.
std::optional<nlohmann::json> read_config_json(const std::string& path);

/// Sets `out` from j[key] when present and not null; InputError "<where>: '<key>' has the wrong type" otherwise.
template <typename T>
void read_config_key(const nlohmann::json& j, const char* key, T& out, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return;
  try {
    out = j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw InputError(where + ": '" + key + "' has the wrong type");
  }
}

/// Class names from "labels" (a list) or Hugging Face's "id2label" (ids must be 0..C-1); unchanged when neither.
void read_config_labels(const nlohmann::json& j, std::vector<std::string>& labels, const std::string& where);

/// Tensor `name` of `file` as float32 on the CPU, checked against `shape` (-1 = any extent) and for NaN/Inf.
torch::Tensor load_checked_tensor(const SafetensorsFile& file, const std::string& name,
                                  const std::vector<std::int64_t>& shape, const std::string& file_name);

/// Moves the model's tensors to `device`; InputError when CUDA is asked for and not available.
void check_device(const torch::Device& device);

}  // namespace attnlens
