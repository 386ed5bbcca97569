#include "models/hf_weights.hpp"

#include <algorithm>

#include "core/array.hpp"
#include "models/checkpoint.hpp"

namespace attnlens {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

HfWeights::HfWeights(const SafetensorsFile& file, std::string file_name, const std::string& marker,
                     std::vector<std::string> head_prefixes)
    : file_(file), file_name_(std::move(file_name)), head_prefixes_(std::move(head_prefixes)) {
  bool found = false;
  for (const auto& t : file.tensors()) {
    if (ends_with(t.name, marker)) {
      prefix_ = t.name.substr(0, t.name.size() - marker.size());
      found = true;
    }
    if (ends_with(t.name, "LayerNorm.gamma")) legacy_ = true;
  }
  if (!found) throw InputError(file_name_ + ": missing tensor '" + marker + "' (with any prefix)");
}

std::string HfWeights::resolve(const std::string& name) const {
  const bool head = std::any_of(head_prefixes_.begin(), head_prefixes_.end(),
                                [&](const std::string& p) { return starts_with(name, p); });
  std::string full = (head ? "" : prefix_) + name;
  if (legacy_ && !file_.find(full)) {
    if (ends_with(full, "LayerNorm.weight")) {
      full = full.substr(0, full.size() - 6) + "gamma";
    } else if (ends_with(full, "LayerNorm.bias")) {
      full = full.substr(0, full.size() - 4) + "beta";
    }
  }
  return full;
}

bool HfWeights::has(const std::string& name) const { return file_.find(resolve(name)) != nullptr; }

std::vector<std::int64_t> HfWeights::shape_of(const std::string& name) const {
  const TensorInfo* info = file_.find(resolve(name));
  if (info == nullptr) throw InputError(file_name_ + ": missing tensor '" + resolve(name) + "'");
  return info->shape;
}

torch::Tensor HfWeights::get(const std::string& name, const std::vector<std::int64_t>& shape) const {
  return load_checked_tensor(file_, resolve(name), shape, file_name_);
}

int HfWeights::count_layers(const std::string& stem) const {
  int layers = 0;
  const std::string marker = prefix_ + stem;
  for (const auto& t : file_.tensors()) {
    if (!starts_with(t.name, marker)) continue;
    const std::string rest = t.name.substr(marker.size());
    std::size_t digits = 0;
    while (digits < rest.size() && digits < 6 && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits == 0 || digits >= rest.size() || rest[digits] != '.') continue;
    layers = std::max(layers, std::stoi(rest.substr(0, digits)) + 1);
  }
  return layers;
}

const EncoderLayerNames& bert_layer_names() {
  static const EncoderLayerNames names{"encoder.layer.",
                                       "attention.self.query",
                                       "attention.self.key",
                                       "attention.self.value",
                                       "attention.output.dense",
                                       "attention.output.LayerNorm",
                                       "intermediate.dense",
                                       "output.dense",
                                       "output.LayerNorm"};
  return names;
}

const EncoderLayerNames& distilbert_layer_names() {
  static const EncoderLayerNames names{"transformer.layer.",  "attention.q_lin",   "attention.k_lin",
                                       "attention.v_lin",     "attention.out_lin", "sa_layer_norm",
                                       "ffn.lin1",            "ffn.lin2",          "output_layer_norm"};
  return names;
}

std::vector<TextClassifier::EncoderLayer> read_encoder_layers(const HfWeights& w, const EncoderLayerNames& names,
                                                              int layers, std::int64_t D, std::int64_t F) {
  std::vector<TextClassifier::EncoderLayer> out;
  for (int l = 0; l < layers; ++l) {
    const std::string p = names.stem + std::to_string(l) + ".";
    const auto linear = [&](const std::string& module, std::int64_t rows, std::int64_t cols, torch::Tensor& weight,
                            torch::Tensor& bias) {
      weight = w.get(p + module + ".weight", {rows, cols});
      bias = w.get(p + module + ".bias", {rows});
    };
    const auto norm = [&](const std::string& module, torch::Tensor& weight, torch::Tensor& bias) {
      weight = w.get(p + module + ".weight", {D});
      bias = w.get(p + module + ".bias", {D});
    };
    TextClassifier::EncoderLayer k;
    linear(names.query, D, D, k.q_w, k.q_b);
    linear(names.key, D, D, k.k_w, k.k_b);
    linear(names.value, D, D, k.v_w, k.v_b);
    linear(names.out, D, D, k.out_w, k.out_b);
    norm(names.norm1, k.ln1_w, k.ln1_b);
    linear(names.ffn_in, F, D, k.ffn_in_w, k.ffn_in_b);
    linear(names.ffn_out, D, F, k.ffn_out_w, k.ffn_out_b);
    norm(names.norm2, k.ln2_w, k.ln2_b);
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace attnlens
