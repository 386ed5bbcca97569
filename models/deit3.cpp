#include "models/deit3.hpp"

#include <filesystem>
#include <map>

#include "io/model_config.hpp"
#include "models/image_family.hpp"

namespace attnlens {

namespace {

// Heads of timm's deit3_* architectures (deit.py): DeiT III huge has 80-wide heads, the others 64.
int heads_of_architecture(const std::string& architecture) {
  static const std::map<std::string, int> heads{
      {"deit3_small", 6}, {"deit3_medium", 8}, {"deit3_base", 12}, {"deit3_large", 16}, {"deit3_huge", 16}};
  for (const auto& [name, h] : heads)
    if (architecture.rfind(name + "_", 0) == 0) return h;
  return 0;
}

}  // namespace

Deit3 Deit3::load(const CheckpointTensors& w, const ImageModelOptions& options) {
  const std::string& file = w.file_name();
  const std::string config_path = (std::filesystem::path(model_folder(file)) / "config.json").string();
  Deit3 m;
  Deit3Config& c = m.config_;
  c.family = "deit3";
  c.naming = w.has("blocks.0.ls1.gamma") ? "timm" : "original";
  const std::string ls1 = c.naming == "timm" ? "ls1.gamma" : "gamma_1", ls2 = c.naming == "timm" ? "ls2.gamma" : "gamma_2";
  c.preprocess = "timm-deit";
  c.mean = {0.485, 0.456, 0.406};
  c.std = {0.229, 0.224, 0.225};

  const auto cls_shape = w.shape_of("cls_token");
  if (cls_shape.size() != 3) throw InputError(file + ": cls_token must be [1,1,D]");
  c.embed_dim = static_cast<int>(cls_shape[2]);
  c.depth = w.count_indexed("blocks.");
  if (c.depth == 0) throw InputError(file + ": no transformer blocks found");
  const auto patch_shape = w.shape_of("patch_embed.proj.weight");
  if (patch_shape.size() != 4 || patch_shape[2] != patch_shape[3])
    throw InputError(file + ": the patch embedding must be a square convolution [D,C,p,p]");
  c.patch_size = static_cast<int>(patch_shape[2]);
  c.in_chans = static_cast<int>(patch_shape[1]);
  c.mlp_hidden = static_cast<int>(w.shape_of("blocks.0.mlp.fc1.weight")[0]);
  c.num_classes = w.has("head.weight") ? static_cast<int>(w.shape_of("head.weight")[0]) : 0;
  // No CLS row: the position embeddings are the patch grid alone (B.2).
  const int side = square_grid_side(w.shape_of("pos_embed"), 0, file, "pos_embed");
  c.image_height = c.image_width = side * c.patch_size;
  c.num_heads = c.embed_dim % 64 == 0 ? c.embed_dim / 64 : 0;

  if (const auto j = read_config_json(config_path)) {
    std::string architecture;
    read_config_key(*j, "architecture", architecture, config_path);
    if (const int h = heads_of_architecture(architecture)) c.num_heads = h;
    apply_image_config_keys(*j, c, c.layer_norm_eps, config_path);
    check_config_matches(*j, "num_features", c.embed_dim, config_path);
    check_config_matches(*j, "num_classes", c.num_classes, config_path);
  }
  check_heads_and_labels(c, file, config_path);

  const std::int64_t D = c.embed_dim, F = c.mlp_hidden;
  VisionBackbone& b = m.backbone_;
  read_timm_backbone(w, c, c.layer_norm_eps, F, F, ls1, ls2, b);
  b.pos_embed = w.get("pos_embed", {1, static_cast<std::int64_t>(side) * side, D});
  b.pos_prefix = 0;
  if (c.num_classes > 0) {
    m.head_w_ = w.get("head.weight", {c.num_classes, D});
    m.head_b_ = w.get("head.bias", {c.num_classes});
  }
  // timm resamples DeiT III's grid at load with resample_abs_pos_embed: bicubic with antialiasing.
  resize_to_image_size(options.image_size, options.position_resize.value_or(PositionResize::BicubicAntialias), c, b);

  move_to_device(options.device, b, {&m.head_w_, &m.head_b_});
  m.device_ = options.device;
  return m;
}

torch::Tensor Deit3::run(const torch::Tensor& images, ImageCapture* capture, const ForwardRules& rules) const {
  check_input(images);
  const auto cls = backbone_.tokens(images, capture, rules).select(1, 0);
  return config_.num_classes == 0 ? cls : rules.linear(cls, head_w_, head_b_, LinearSite::Head);
}

}  // namespace attnlens
