// What every model family needs to read a checkpoint: config.json beside the weights, label names, and tensors
// checked against the shape the architecture expects (a mis-shaped or non-finite tensor is an error naming it).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
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

/// The class each row of `logits` [B, C] is explained for, as a [B, 1] int64 index on the logits' device: targets[b],
/// or the predicted class where it is negative. InputError "<noun> c is out of range: the model has C classes
/// (0..C-1)" for a class past the end.
torch::Tensor target_index(const torch::Tensor& logits, std::vector<std::int64_t> targets, const std::string& noun);

/// Moves the model's tensors to `device`; InputError when CUDA is asked for and not available.
void check_device(const torch::Device& device);

/// The tensors of a checkpoint file under the names its model defines, whatever wraps them: DINO and DINOv2
/// training checkpoints nest the backbone under teacher./student. and backbone. (the student also under module.);
/// their projection heads are not part of the model and are left out. DINOv2's chunked training layout
/// (blocks.<chunk>.<index>.*) reads as the flat blocks.<index>.*.
class CheckpointTensors {
 public:
  /// Opens `weights_path` (a .safetensors file; see resolve_weights_path).
  static CheckpointTensors open(const std::string& weights_path);

  const std::string& file_name() const { return file_name_; }
  /// The names without the wrappers, in the file's order.
  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& name) const { return original_.count(name) > 0; }
  /// The first name ending with `suffix` ("" when none): finds Hugging Face's model prefix (vit., dinov2., ...).
  std::string find_suffix(const std::string& suffix) const;
  /// 1 + the largest N of the names "<prefix>N.<...>"; 0 when there are none (the depth of "blocks.").
  int count_indexed(const std::string& prefix) const;
  /// InputError "<file>: missing tensor '<name>'" when absent.
  std::vector<std::int64_t> shape_of(const std::string& name) const;
  /// As load_checked_tensor: float32 on the CPU, checked against `shape` (-1 = any extent) and for NaN/Inf.
  torch::Tensor get(const std::string& name, const std::vector<std::int64_t>& shape) const;

 private:
  CheckpointTensors(SafetensorsFile file, std::string file_name);

  SafetensorsFile file_;
  std::string file_name_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> original_;  ///< name without wrappers -> name in the file
};

}  // namespace attnlens
ATTNLENS_API_END
