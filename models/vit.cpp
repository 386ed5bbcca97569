#include "models/vit.hpp"

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/array.hpp"
#include "io/safetensors.hpp"
#include "models/checkpoint.hpp"
#include "models/image_family.hpp"

namespace attnlens {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The weights under their canonical (timm) names, whatever naming the file used.
class WeightSource {
 public:
  explicit WeightSource(const CheckpointTensors& weights) : w_(weights) {
    const std::string marker = "embeddings.patch_embeddings.projection.weight";
    const std::string hf = w_.find_suffix(marker);
    if (!hf.empty()) {
      naming_ = "hf";
      hf_prefix_ = hf.substr(0, hf.size() - marker.size());
    } else if (w_.has("patch_embed.proj.weight")) {
      naming_ = "timm";
    } else {
      throw InputError(w_.file_name() + ": unknown tensor naming: expected timm ViT names (patch_embed.proj.weight, "
                                        "blocks.N.attn.qkv.weight, ...) or Hugging Face ViT/DeiT names "
                                        "(vit.embeddings.patch_embeddings.projection.weight, ...)");
    }
  }

  const std::string& naming() const { return naming_; }

  bool has(const std::string& canonical) const { return !candidates(canonical).empty(); }

  /// The tensor with canonical name `canonical`, checked against `shape` (-1 = any extent).
  torch::Tensor get(const std::string& canonical, const std::vector<std::int64_t>& shape) const {
    if (naming_ == "hf" && ends_with(canonical, "attn.qkv.weight")) return hf_qkv(canonical, shape, "weight");
    if (naming_ == "hf" && ends_with(canonical, "attn.qkv.bias")) return hf_qkv(canonical, shape, "bias");
    const auto names = candidates(canonical);
    if (names.empty()) throw InputError(w_.file_name() + ": missing tensor '" + expected_name(canonical) + "'");
    return w_.get(names.front(), shape);
  }

  std::vector<std::int64_t> shape_of(const std::string& canonical) const {
    const auto names = candidates(canonical);
    if (names.empty()) throw InputError(w_.file_name() + ": missing tensor '" + expected_name(canonical) + "'");
    return w_.shape_of(names.front());
  }

  int count_blocks() const { return w_.count_indexed(naming_ == "hf" ? hf_prefix_ + "encoder.layer." : "blocks."); }

 private:
  // Hugging Face names for a canonical timm name; several where DeiT and ViT differ.
  std::vector<std::string> hf_names(const std::string& c) const {
    const std::string& p = hf_prefix_;
    if (c == "cls_token") return {p + "embeddings.cls_token"};
    if (c == "dist_token") return {p + "embeddings.distillation_token"};
    if (c == "pos_embed") return {p + "embeddings.position_embeddings"};
    if (c == "patch_embed.proj.weight") return {p + "embeddings.patch_embeddings.projection.weight"};
    if (c == "patch_embed.proj.bias") return {p + "embeddings.patch_embeddings.projection.bias"};
    if (c == "norm.weight") return {p + "layernorm.weight"};
    if (c == "norm.bias") return {p + "layernorm.bias"};
    if (starts_with(c, "head_dist.")) return {"distillation_classifier." + c.substr(10)};
    if (starts_with(c, "head.")) return {"classifier." + c.substr(5), "cls_classifier." + c.substr(5)};
    if (starts_with(c, "blocks.")) {
      const size_t dot = c.find('.', 7);
      const std::string layer = p + "encoder.layer." + c.substr(7, dot - 7) + ".";
      const std::string rest = c.substr(dot + 1);
      static const std::map<std::string, std::string> parts = {
          {"norm1.weight", "layernorm_before.weight"},       {"norm1.bias", "layernorm_before.bias"},
          {"norm2.weight", "layernorm_after.weight"},        {"norm2.bias", "layernorm_after.bias"},
          {"attn.proj.weight", "attention.output.dense.weight"}, {"attn.proj.bias", "attention.output.dense.bias"},
          {"mlp.fc1.weight", "intermediate.dense.weight"},   {"mlp.fc1.bias", "intermediate.dense.bias"},
          {"mlp.fc2.weight", "output.dense.weight"},         {"mlp.fc2.bias", "output.dense.bias"},
          {"attn.query.weight", "attention.attention.query.weight"}, {"attn.query.bias", "attention.attention.query.bias"},
          {"attn.key.weight", "attention.attention.key.weight"},     {"attn.key.bias", "attention.attention.key.bias"},
          {"attn.value.weight", "attention.attention.value.weight"}, {"attn.value.bias", "attention.attention.value.bias"},
      };
      const auto it = parts.find(rest);
      if (it != parts.end()) return {layer + it->second};
    }
    return {c};
  }

  std::vector<std::string> candidates(const std::string& canonical) const {
    std::vector<std::string> found;
    for (const auto& name : naming_ == "hf" ? hf_names(canonical) : std::vector<std::string>{canonical})
      if (w_.has(name)) found.push_back(name);
    return found;
  }

  std::string expected_name(const std::string& canonical) const {
    return naming_ == "hf" ? hf_names(canonical).front() : canonical;
  }

  // Hugging Face stores Q, K and V separately; timm's qkv is the three stacked along the output dimension.
  torch::Tensor hf_qkv(const std::string& canonical, const std::vector<std::int64_t>& shape,
                       const std::string& kind) const {
    const std::string block = canonical.substr(0, canonical.find(".attn.") + 6);
    std::vector<std::int64_t> part = shape;
    if (part[0] > 0) part[0] /= 3;
    std::vector<torch::Tensor> qkv;
    for (const char* which : {"query.", "key.", "value."}) {
      const std::string c = block + which + kind;
      const auto names = candidates(c);
      if (names.empty()) throw InputError(w_.file_name() + ": missing tensor '" + expected_name(c) + "'");
      qkv.push_back(w_.get(names.front(), part));
    }
    return torch::cat(qkv, 0);
  }

  const CheckpointTensors& w_;
  std::string naming_;
  std::string hf_prefix_;
};

}  // namespace

VisionTransformer VisionTransformer::load(const std::string& path, const ImageModelOptions& options) {
  const fs::path weights = resolve_weights_path(path);
  return load(CheckpointTensors::open(weights.string()), (weights.parent_path() / "config.json").string(), options);
}

VisionTransformer VisionTransformer::load(const CheckpointTensors& weights, const std::string& config_path,
                                          const ImageModelOptions& options) {
  const WeightSource w(weights);
  const std::string& file = weights.file_name();
  VisionTransformer m;
  VitConfig& c = m.config_;
  c.family = "vit";
  c.naming = w.naming();
  c.layer_norm_eps = c.naming == "hf" ? 1e-12 : 1e-6;  // each family's default when config.json is silent
  c.preprocess = c.naming == "hf" ? "hf" : "timm-vit";

  // Architecture from the tensor shapes; config.json adds what shapes cannot say (heads, eps, labels).
  const auto cls_shape = w.shape_of("cls_token");
  if (cls_shape.size() != 3) throw InputError(file + ": cls_token must be [1,1,D]");
  c.embed_dim = static_cast<int>(cls_shape[2]);
  c.depth = w.count_blocks();
  if (c.depth == 0) throw InputError(file + ": no transformer blocks found");
  const auto patch_shape = w.shape_of("patch_embed.proj.weight");
  if (patch_shape.size() != 4 || patch_shape[2] != patch_shape[3])
    throw InputError(file + ": the patch embedding must be a square convolution [D,C,p,p]");
  c.patch_size = static_cast<int>(patch_shape[2]);
  c.in_chans = static_cast<int>(patch_shape[1]);
  c.mlp_hidden = static_cast<int>(w.shape_of("blocks.0.mlp.fc1.weight")[0]);
  c.distilled = w.has("dist_token");
  c.num_classes = w.has("head.weight") ? static_cast<int>(w.shape_of("head.weight")[0]) : 0;
  const int side = square_grid_side(w.shape_of("pos_embed"), c.prefix_tokens(), file, "pos_embed");
  c.image_height = c.image_width = side * c.patch_size;
  c.num_heads = c.embed_dim % 64 == 0 ? c.embed_dim / 64 : 0;  // timm's head width when nothing says otherwise

  if (const auto j = read_config_json(config_path)) apply_image_config_keys(*j, c, c.layer_norm_eps, config_path);
  check_heads_and_labels(c, file, config_path);

  const std::int64_t D = c.embed_dim, F = c.mlp_hidden;
  VisionBackbone& b = m.backbone_;
  read_timm_backbone(w, c, c.layer_norm_eps, F, F, "", "", b);
  if (c.distilled) b.dist_token = w.get("dist_token", {1, 1, D});
  b.pos_embed = w.get("pos_embed", {1, c.tokens(), D});
  b.pos_prefix = c.prefix_tokens();
  if (c.num_classes > 0) {
    m.head_w_ = w.get("head.weight", {c.num_classes, D});
    m.head_b_ = w.get("head.bias", {c.num_classes});
    if (c.distilled) {
      m.head_dist_w_ = w.get("head_dist.weight", {c.num_classes, D});
      m.head_dist_b_ = w.get("head_dist.bias", {c.num_classes});
    }
  }
  // timm's resample_abs_pos_embed resizes the grid bicubically (align_corners false) and keeps the prefix.
  resize_to_image_size(options.image_size, options.position_resize.value_or(PositionResize::Bicubic), c, b);

  move_to_device(options.device, b, {&m.head_w_, &m.head_b_, &m.head_dist_w_, &m.head_dist_b_});
  m.device_ = options.device;
  return m;
}

std::pair<torch::Tensor, torch::Tensor> VisionTransformer::cls_head() const {
  if (config_.distilled) return {};
  return {head_w_, head_b_};
}

torch::Tensor VisionTransformer::run(const torch::Tensor& images, ImageCapture* capture,
                                     const ForwardRules& rules) const {
  check_input(images);
  const auto x = backbone_.tokens(images, capture, rules);
  if (config_.num_classes == 0) return x.select(1, 0);  // backbone: the CLS features
  auto logits = rules.linear(x.select(1, 0), head_w_, head_b_, LinearSite::Head);
  if (config_.distilled)
    logits = (logits + rules.linear(x.select(1, 1), head_dist_w_, head_dist_b_, LinearSite::Head)) / 2;
  return logits;
}

}  // namespace attnlens
