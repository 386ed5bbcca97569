#include "models/dinov2.hpp"

#include <filesystem>
#include <map>

#include "io/model_config.hpp"
#include "models/image_family.hpp"

namespace attnlens {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The weights under the original (hub) names, whatever naming the file used.
class Dinov2Names {
 public:
  explicit Dinov2Names(const CheckpointTensors& w) : w_(w) {
    const std::string marker = "embeddings.patch_embeddings.projection.weight";
    const std::string hf = w.find_suffix(marker);
    if (!hf.empty()) {
      naming_ = "hf";
      prefix_ = hf.substr(0, hf.size() - marker.size());
    } else if (w.has("reg_token") || (!w.has("mask_token") && !w.has("register_tokens"))) {
      naming_ = "timm";
    } else {
      naming_ = "hub";
    }
  }

  const std::string& naming() const { return naming_; }
  bool has(const std::string& c) const { return w_.has(name(c)); }
  std::vector<std::int64_t> shape_of(const std::string& c) const { return w_.shape_of(name(c)); }
  int depth() const { return w_.count_indexed(naming_ == "hf" ? prefix_ + "encoder.layer." : "blocks."); }

  torch::Tensor get(const std::string& c, const std::vector<std::int64_t>& shape) const {
    const bool qkv_weight = c.size() > 15 && c.compare(c.size() - 15, 15, "attn.qkv.weight") == 0;
    const bool qkv_bias = c.size() > 13 && c.compare(c.size() - 13, 13, "attn.qkv.bias") == 0;
    if (naming_ == "hf" && (qkv_weight || qkv_bias)) {  // Q, K and V stored apart; qkv stacks them (MODELS.md 0)
      const std::string layer = name(c.substr(0, c.find(".attn.") + 1) + "norm1.weight");
      const std::string base = layer.substr(0, layer.size() - std::string("norm1.weight").size());
      std::vector<std::int64_t> part = shape;
      part[0] /= 3;
      std::vector<torch::Tensor> parts;
      for (const char* which : {"query.", "key.", "value."})
        parts.push_back(w_.get(base + "attention.attention." + which + (qkv_weight ? "weight" : "bias"), part));
      return torch::cat(parts, 0);
    }
    return w_.get(name(c), shape);
  }

  // The file's name for original name `c`.
  std::string name(const std::string& c) const {
    if (naming_ == "timm") {
      if (c == "register_tokens") return "reg_token";
      return c;
    }
    if (naming_ == "hub") {
      if (swiglu_hub_ && ends_with(c, "mlp.fc1.weight")) return replace_end(c, "mlp.fc1.weight", "mlp.w12.weight");
      if (swiglu_hub_ && ends_with(c, "mlp.fc1.bias")) return replace_end(c, "mlp.fc1.bias", "mlp.w12.bias");
      if (swiglu_hub_ && ends_with(c, "mlp.fc2.weight")) return replace_end(c, "mlp.fc2.weight", "mlp.w3.weight");
      if (swiglu_hub_ && ends_with(c, "mlp.fc2.bias")) return replace_end(c, "mlp.fc2.bias", "mlp.w3.bias");
      return c;
    }
    const std::string& p = prefix_;
    static const std::map<std::string, std::string> top = {
        {"cls_token", "embeddings.cls_token"},
        {"pos_embed", "embeddings.position_embeddings"},
        {"register_tokens", "embeddings.register_tokens"},
        {"mask_token", "embeddings.mask_token"},
        {"patch_embed.proj.weight", "embeddings.patch_embeddings.projection.weight"},
        {"patch_embed.proj.bias", "embeddings.patch_embeddings.projection.bias"},
        {"norm.weight", "layernorm.weight"},
        {"norm.bias", "layernorm.bias"}};
    if (const auto it = top.find(c); it != top.end()) return p + it->second;
    if (starts_with(c, "head.")) return "classifier." + c.substr(5);
    if (starts_with(c, "blocks.")) {
      const size_t dot = c.find('.', 7);
      const std::string layer = p + "encoder.layer." + c.substr(7, dot - 7) + ".";
      const std::string rest = c.substr(dot + 1);
      static const std::map<std::string, std::string> parts = {
          {"attn.proj.weight", "attention.output.dense.weight"},
          {"attn.proj.bias", "attention.output.dense.bias"},
          {"ls1.gamma", "layer_scale1.lambda1"},
          {"ls2.gamma", "layer_scale2.lambda1"}};
      if (const auto it = parts.find(rest); it != parts.end()) return layer + it->second;
      if (swiglu_hf_ && starts_with(rest, "mlp.fc1.")) return layer + "mlp.weights_in." + rest.substr(8);
      if (swiglu_hf_ && starts_with(rest, "mlp.fc2.")) return layer + "mlp.weights_out." + rest.substr(8);
      return layer + rest;  // norm1, norm2, mlp.fc1, mlp.fc2 keep their names
    }
    return c;
  }

  /// ViT-g's SwiGLU under its own names (hub mlp.w12/w3, Hugging Face weights_in/out); timm packs it in fc1.
  bool named_swiglu() const { return swiglu_hub_ || swiglu_hf_; }
  void find_swiglu() {
    swiglu_hub_ = naming_ == "hub" && w_.has("blocks.0.mlp.w12.weight");
    swiglu_hf_ = naming_ == "hf" && w_.has(prefix_ + "encoder.layer.0.mlp.weights_in.weight");
  }

 private:
  static bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  static std::string replace_end(const std::string& s, const std::string& from, const std::string& to) {
    return s.substr(0, s.size() - from.size()) + to;
  }

  const CheckpointTensors& w_;
  std::string naming_, prefix_;
  bool swiglu_hub_ = false, swiglu_hf_ = false;
};

}  // namespace

Dinov2 Dinov2::load(const CheckpointTensors& weights, const ImageModelOptions& options) {
  const std::string& file = weights.file_name();
  const std::string config_path = (std::filesystem::path(model_folder(file)) / "config.json").string();
  Dinov2Names w(weights);
  w.find_swiglu();
  Dinov2 m;
  Dinov2Config& c = m.config_;
  c.family = "dinov2";
  c.naming = w.naming();
  c.preprocess = "dino";
  c.mean = {0.485, 0.456, 0.406};
  c.std = {0.229, 0.224, 0.225};

  const auto cls_shape = w.shape_of("cls_token");
  if (cls_shape.size() != 3) throw InputError(file + ": " + w.name("cls_token") + " must be [1,1,D]");
  c.embed_dim = static_cast<int>(cls_shape[2]);
  c.depth = w.depth();
  if (c.depth == 0) throw InputError(file + ": no transformer blocks found");
  const auto patch_shape = w.shape_of("patch_embed.proj.weight");
  if (patch_shape.size() != 4 || patch_shape[2] != patch_shape[3])
    throw InputError(file + ": the patch embedding must be a square convolution [D,C,p,p]");
  c.patch_size = static_cast<int>(patch_shape[2]);
  c.in_chans = static_cast<int>(patch_shape[1]);
  if (w.has("register_tokens")) {
    const auto r = w.shape_of("register_tokens");
    if (r.size() != 3 || r[0] != 1 || r[2] != c.embed_dim)
      throw InputError(file + ": " + w.name("register_tokens") + " must be [1,R,D], got " + shape_text(r));
    c.register_tokens = static_cast<int>(r[1]);
  }
  // timm's register models fold the CLS position row into cls_token and keep the patch rows only.
  const auto pos_shape = w.shape_of("pos_embed");
  const int pos_prefix = c.naming == "timm" && c.register_tokens > 0 ? 0 : 1;
  const int side = square_grid_side(pos_shape, pos_prefix, file, w.name("pos_embed"));
  c.image_height = c.image_width = side * c.patch_size;
  const auto fc2 = w.shape_of("blocks.0.mlp.fc2.weight"), fc1 = w.shape_of("blocks.0.mlp.fc1.weight");
  if (fc2.size() != 2 || fc1.size() != 2)
    throw InputError(file + ": " + w.name("blocks.0.mlp.fc1.weight") + " and fc2 must be matrices");
  c.mlp_hidden = static_cast<int>(fc2[1]);
  c.swiglu = w.named_swiglu() || fc1[0] == 2 * fc2[1];
  if (w.has("head.weight")) {
    const auto head = w.shape_of("head.weight");
    c.num_classes = static_cast<int>(head[0]);
    c.head_on_patch_mean = head.size() == 2 && head[1] == 2 * c.embed_dim;
  } else {
    c.num_classes = 0;
  }
  c.num_heads = c.embed_dim % 64 == 0 ? c.embed_dim / 64 : 0;

  if (const auto j = read_config_json(config_path)) {
    apply_image_config_keys(*j, c, c.layer_norm_eps, config_path);
    // Hugging Face's Dinov2Config restates the architecture: it must be the one the weights have.
    check_config_matches(*j, "hidden_size", c.embed_dim, config_path);
    check_config_matches(*j, "num_hidden_layers", c.depth, config_path);
    check_config_matches(*j, "patch_size", c.patch_size, config_path);
    check_config_matches(*j, "num_channels", c.in_chans, config_path);
    check_config_matches(*j, "num_register_tokens", c.register_tokens, config_path);
    bool use_swiglu = c.swiglu;
    read_config_key(*j, "use_swiglu_ffn", use_swiglu, config_path);
    if (use_swiglu != c.swiglu)
      throw InputError(config_path + ": use_swiglu_ffn is " + (use_swiglu ? "true" : "false") +
                       " but the weights have " + (c.swiglu ? "a SwiGLU" : "an MLP") + " feed-forward");
  }
  check_heads_and_labels(c, file, config_path);

  const std::int64_t D = c.embed_dim, F = c.mlp_hidden, F1 = c.swiglu ? 2 * F : F;
  VisionBackbone& b = m.backbone_;
  read_timm_backbone(w, c, c.layer_norm_eps, F, F1, "ls1.gamma", "ls2.gamma", b);
  if (c.register_tokens > 0) b.registers = w.get("register_tokens", {1, c.register_tokens, D});
  b.pos_embed = w.get("pos_embed", {1, pos_prefix + static_cast<std::int64_t>(side) * side, D});
  b.pos_prefix = pos_prefix;
  b.encoder.feed_forward = c.swiglu ? FeedForward::SwiGlu : FeedForward::Gelu;
  if (c.num_classes > 0) {
    m.head_w_ = w.get("head.weight", {c.num_classes, c.head_on_patch_mean ? 2 * D : D});
    m.head_b_ = w.get("head.bias", {c.num_classes});
  }

  // Each source's own resampling (A.6): the original without registers scales by (new + 0.1) / old, Hugging Face's
  // Dinov2Model resizes plainly, and everything with registers, and timm, resizes with antialiasing.
  const PositionResize source_mode = c.register_tokens > 0 || c.naming == "timm" ? PositionResize::BicubicAntialias
                                     : c.naming == "hub"                        ? PositionResize::BicubicOffset
                                                                                : PositionResize::Bicubic;
  c.position_resize = options.position_resize.value_or(source_mode);
  resize_to_image_size(options.image_size > 0 ? options.image_size : 224, c.position_resize, c, b);

  move_to_device(options.device, b, {&m.head_w_, &m.head_b_});
  m.device_ = options.device;
  return m;
}

torch::Tensor Dinov2::run(const torch::Tensor& images, ImageCapture* capture, const ForwardRules& rules) const {
  check_input(images);
  const auto x = backbone_.tokens(images, capture, rules);
  const auto cls = x.select(1, 0);
  if (config_.num_classes == 0) return cls;
  if (!config_.head_on_patch_mean) return rules.linear(cls, head_w_, head_b_, LinearSite::Head);
  // Dinov2ForImageClassification: [CLS, mean over the patch tokens (registers excluded)] of the normed output.
  const std::int64_t P = config_.prefix_tokens();
  const auto patches = x.narrow(1, P, x.size(1) - P).mean(1);
  return rules.linear(torch::cat({cls, patches}, 1), head_w_, head_b_, LinearSite::Head);
}

}  // namespace attnlens
