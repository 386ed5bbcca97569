#include "models/checkpoint.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace attnlens {

std::string resolve_weights_path(const std::string& path) {
  std::filesystem::path weights = path;
  if (std::filesystem::is_directory(weights)) weights /= "model.safetensors";
  if (!std::filesystem::exists(weights)) throw InputError("model not found: " + weights.string());
  return weights.string();
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? "," : "") << shape[i];
  s << "]";
  return s.str();
}

torch::Tensor load_checked_tensor(const SafetensorsFile& file, const std::string& name,
                                  const std::vector<std::int64_t>& shape, const std::string& file_name) {
  const TensorInfo* info = file.find(name);
  if (info == nullptr) throw InputError(file_name + ": missing tensor '" + name + "'");
  bool ok = info->shape.size() == shape.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || shape[i] == info->shape[i];
  if (!ok)
    throw InputError(file_name + ": tensor '" + name + "' has shape " + shape_text(info->shape) + ", expected " +
                     shape_text(shape));
  std::vector<float> values = file.to_float(name);
  for (float v : values)
    if (!std::isfinite(v)) throw InputError(file_name + ": tensor '" + name + "' contains NaN or Inf");
  return torch::from_blob(values.data(), info->shape, torch::kFloat32).clone();
}

void check_device(const torch::Device& device) {
  if (device.is_cuda() && !torch::cuda::is_available())
    throw InputError("--device cuda: this LibTorch build has no CUDA device available");
}

}  // namespace attnlens
