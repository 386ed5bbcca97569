#include "models/arrays.hpp"

#include <algorithm>

namespace attnlens {

Array to_array(const torch::Tensor& tensor) {
  const auto t = tensor.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  Array a(t.sizes().vec());
  std::copy(t.data_ptr<double>(), t.data_ptr<double>() + t.numel(), a.data.begin());
  return a;
}

namespace {

Array convert_layers(const std::vector<torch::Tensor>& per_layer, std::int64_t b, bool head_mean) {
  if (per_layer.empty()) return Array();
  std::vector<std::int64_t> shape{static_cast<std::int64_t>(per_layer.size())};
  auto item = [&](size_t l) {
    const auto t = per_layer[l][b].detach();
    return (head_mean ? t.mean(0) : t).to(torch::kCPU, torch::kFloat32).contiguous();
  };
  const auto first = item(0);
  for (auto extent : first.sizes()) shape.push_back(extent);
  Array a(shape);
  const auto per = static_cast<size_t>(first.numel());
  for (size_t l = 0; l < per_layer.size(); ++l) {
    const auto t = l == 0 ? first : item(l);
    const float* src = t.data_ptr<float>();
    std::copy(src, src + per, a.data.begin() + static_cast<std::ptrdiff_t>(l * per));
  }
  return a;
}

}  // namespace

Array image_layers(const std::vector<torch::Tensor>& per_layer, std::int64_t b) {
  return convert_layers(per_layer, b, false);
}

Array image_layers_head_mean(const std::vector<torch::Tensor>& per_layer, std::int64_t b) {
  return convert_layers(per_layer, b, true);
}

}  // namespace attnlens
