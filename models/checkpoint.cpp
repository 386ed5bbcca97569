#include "models/checkpoint.hpp"

#include <algorithm>
#include <cctype>
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

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

// "blocks.<chunk>.<index>.rest" -> "blocks.<index>.rest"; any other name unchanged.
std::string unchunked(const std::string& name) {
  if (!starts_with(name, "blocks.")) return name;
  const size_t a = name.find('.', 7);
  if (a == std::string::npos || !all_digits(name.substr(7, a - 7))) return name;
  const size_t b = name.find('.', a + 1);
  if (b == std::string::npos || !all_digits(name.substr(a + 1, b - a - 1))) return name;
  return "blocks." + name.substr(a + 1);
}

}  // namespace

CheckpointTensors::CheckpointTensors(SafetensorsFile file, std::string file_name)
    : file_(std::move(file)), file_name_(std::move(file_name)) {
  bool has_teacher = false, has_backbone = false;
  for (const auto& t : file_.tensors()) {
    const std::string& n = t.name;
    has_teacher |= starts_with(n, "teacher.");
    has_backbone |= starts_with(n, "backbone.") || starts_with(n, "teacher.backbone.") ||
                    starts_with(n, "module.backbone.");
  }
  for (const auto& t : file_.tensors()) {
    std::string s = t.name;
    if (has_teacher) {
      if (!starts_with(s, "teacher.")) continue;
      s = s.substr(8);
    }
    if (starts_with(s, "module.")) s = s.substr(7);
    if (has_backbone) {
      if (!starts_with(s, "backbone.")) continue;
      s = s.substr(9);
    }
    s = unchunked(s);
    if (original_.emplace(s, t.name).second) names_.push_back(s);
  }
}

CheckpointTensors CheckpointTensors::open(const std::string& weights_path) {
  return CheckpointTensors(SafetensorsFile::open(weights_path), weights_path);
}

std::string CheckpointTensors::find_suffix(const std::string& suffix) const {
  for (const auto& n : names_)
    if (n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) return n;
  return "";
}

int CheckpointTensors::count_indexed(const std::string& prefix) const {
  int count = 0;
  for (const auto& n : names_) {
    if (!starts_with(n, prefix)) continue;
    const size_t dot = n.find('.', prefix.size());
    const std::string index = n.substr(prefix.size(), dot == std::string::npos ? std::string::npos : dot - prefix.size());
    if (all_digits(index) && index.size() < 7) count = std::max(count, std::stoi(index) + 1);
  }
  return count;
}

std::vector<std::int64_t> CheckpointTensors::shape_of(const std::string& name) const {
  const auto it = original_.find(name);
  if (it == original_.end()) throw InputError(file_name_ + ": missing tensor '" + name + "'");
  return file_.at(it->second).shape;
}

torch::Tensor CheckpointTensors::get(const std::string& name, const std::vector<std::int64_t>& shape) const {
  const auto it = original_.find(name);
  if (it == original_.end()) throw InputError(file_name_ + ": missing tensor '" + name + "'");
  return load_checked_tensor(file_, it->second, shape, file_name_);
}

torch::Tensor target_index(const torch::Tensor& logits, std::vector<std::int64_t> targets, const std::string& noun) {
  const std::int64_t C = logits.size(1);
  const auto predicted = logits.detach().argmax(1).to(torch::kCPU);
  for (size_t b = 0; b < targets.size(); ++b) {
    if (targets[b] < 0) targets[b] = predicted[static_cast<std::int64_t>(b)].item<std::int64_t>();
    if (targets[b] >= C)
      throw InputError(noun + " " + std::to_string(targets[b]) + " is out of range: the model has " +
                       std::to_string(C) + " classes (0.." + std::to_string(C - 1) + ")");
  }
  return torch::tensor(targets, torch::kInt64).to(logits.device()).unsqueeze(1);
}

}  // namespace attnlens
