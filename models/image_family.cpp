#include "models/image_family.hpp"

#include <cmath>
#include <filesystem>

#include "io/model_config.hpp"
#include "models/checkpoint.hpp"

namespace attnlens {

int square_grid_side(const std::vector<std::int64_t>& shape, int prefix, const std::string& file,
                     const std::string& name) {
  const bool ranked = (shape.size() == 3 && shape[0] == 1) || shape.size() == 2;
  const std::int64_t rows = ranked ? shape[shape.size() - 2] : 0;
  const std::int64_t grid_tokens = rows - prefix;
  const auto side = static_cast<std::int64_t>(
      std::llround(std::sqrt(static_cast<double>(std::max<std::int64_t>(0, grid_tokens)))));
  if (grid_tokens <= 0 || side * side != grid_tokens)
    throw InputError(file + ": " + name + " must be [1, " + std::to_string(prefix) + " + g*g, D], got " +
                     shape_text(shape));
  return static_cast<int>(side);
}

void apply_image_config_keys(const nlohmann::json& j, ImageModelConfig& c, double& eps, const std::string& where) {
  VitConfigKeys k{c.num_heads, eps, c.labels, c.preprocess, c.mean, c.std};
  read_vit_config_keys(j, k, where);
  c.num_heads = k.num_heads;
  eps = k.layer_norm_eps;
  c.labels = std::move(k.labels);
  c.preprocess = std::move(k.preprocess);
  c.mean = std::move(k.mean);
  c.std = std::move(k.std);
}

void check_heads_and_labels(const ImageModelConfig& c, const std::string& file, const std::string& config_path) {
  if (c.num_heads <= 0 || c.embed_dim % c.num_heads != 0)
    throw InputError(file + ": cannot tell the number of attention heads (embed dim " + std::to_string(c.embed_dim) +
                     (c.num_heads > 0 ? ", which " + std::to_string(c.num_heads) + " heads do not divide" : "") +
                     "); put \"num_heads\" in config.json beside the weights");
  if (!c.labels.empty() && static_cast<int>(c.labels.size()) != c.num_classes)
    throw InputError(config_path + ": " + std::to_string(c.labels.size()) + " labels for " +
                     std::to_string(c.num_classes) + " classes");
}

void resize_to_image_size(int size, PositionResize mode, ImageModelConfig& c, VisionBackbone& b) {
  if (size <= 0 || (size == c.image_height && size == c.image_width)) return;
  if (size % c.patch_size != 0)
    throw InputError("image size " + std::to_string(size) + " is not a multiple of the patch size " +
                     std::to_string(c.patch_size));
  b.resize_positions(c.grid_h(), c.grid_w(), size / c.patch_size, size / c.patch_size, mode);
  c.image_height = c.image_width = size;
}

FeedForward activation_named(const std::string& name, const std::string& where) {
  if (name == "gelu") return FeedForward::Gelu;
  if (name == "quick_gelu") return FeedForward::QuickGelu;
  throw InputError(where + ": hidden_act '" + name + "' is not supported (gelu or quick_gelu)");
}

std::string model_folder(const std::string& weights_file) {
  return std::filesystem::path(weights_file).parent_path().string();
}

void move_to_device(const torch::Device& device, VisionBackbone& backbone,
                    std::initializer_list<torch::Tensor*> tensors) {
  check_device(device);
  backbone.to(device);
  for (torch::Tensor* t : tensors)
    if (t->defined()) *t = t->to(device);
}

}  // namespace attnlens
