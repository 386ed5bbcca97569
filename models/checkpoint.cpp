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

std::optional<nlohmann::json> read_config_json(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  std::ifstream in(path);
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    if (!j.is_object()) throw InputError(path + ": not a JSON object");
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": invalid JSON: " + e.what());
  }
}

void read_config_labels(const nlohmann::json& j, std::vector<std::string>& labels, const std::string& where) {
  if (j.contains("labels")) read_config_key(j, "labels", labels, where);
  if (!j.contains("id2label") || !j["id2label"].is_object()) return;
  std::map<int, std::string> by_id;
  for (const auto& [key, value] : j["id2label"].items()) {
    try {
      by_id[std::stoi(key)] = value.get<std::string>();
    } catch (const std::exception&) {
      throw InputError(where + ": id2label must map integer ids to names");
    }
  }
  labels.clear();
  for (const auto& [id, name] : by_id) {
    if (id != static_cast<int>(labels.size())) throw InputError(where + ": id2label ids are not 0..C-1");
    labels.push_back(name);
  }
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
