#include "models/vit.hpp"

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/array.hpp"
#include "io/safetensors.hpp"
#include "models/checkpoint.hpp"

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
  WeightSource(const SafetensorsFile& file, std::string file_name) : file_(file), file_name_(std::move(file_name)) {
    std::vector<std::string> names;
    for (const auto& t : file.tensors()) names.push_back(t.name);
    strip_checkpoint_prefixes(names);
    for (const auto& [stripped, original] : stripped_)
      if (ends_with(stripped, "embeddings.patch_embeddings.projection.weight")) {
        naming_ = "hf";
        hf_prefix_ = stripped.substr(0, stripped.size() - std::string("embeddings.patch_embeddings.projection.weight").size());
      }
    if (naming_.empty() && stripped_.count("patch_embed.proj.weight")) naming_ = "timm";
    if (naming_.empty())
      throw InputError(file_name_ + ": unknown tensor naming: expected timm ViT names (patch_embed.proj.weight, "
                                    "blocks.N.attn.qkv.weight, ...) or Hugging Face ViT/DeiT names "
                                    "(vit.embeddings.patch_embeddings.projection.weight, ...)");
  }

  const std::string& naming() const { return naming_; }

  bool has(const std::string& canonical) const { return !candidates(canonical).empty(); }

  /// The tensor with canonical name `canonical`, checked against `shape` (-1 = any extent).
  torch::Tensor get(const std::string& canonical, const std::vector<std::int64_t>& shape) const {
    if (naming_ == "hf" && ends_with(canonical, "attn.qkv.weight")) return hf_qkv(canonical, shape, "weight");
    if (naming_ == "hf" && ends_with(canonical, "attn.qkv.bias")) return hf_qkv(canonical, shape, "bias");
    const auto names = candidates(canonical);
    if (names.empty()) throw InputError(file_name_ + ": missing tensor '" + expected_name(canonical) + "'");
    return load(names.front(), shape);
  }

  std::vector<std::int64_t> shape_of(const std::string& canonical) const {
    const auto names = candidates(canonical);
    if (names.empty()) throw InputError(file_name_ + ": missing tensor '" + expected_name(canonical) + "'");
    return file_.at(stripped_.at(names.front())).shape;
  }

  int count_blocks() const {
    int depth = 0;
    const std::string marker = naming_ == "hf" ? hf_prefix_ + "encoder.layer." : "blocks.";
    for (const auto& [name, original] : stripped_)
      if (starts_with(name, marker)) depth = std::max(depth, std::stoi(name.substr(marker.size())) + 1);
    return depth;
  }

 private:
  // DINO checkpoints nest the backbone under teacher./student. and backbone. (student also module.); their
  // projection head is not part of the backbone and is ignored.
  void strip_checkpoint_prefixes(const std::vector<std::string>& names) {
    bool has_teacher = false, has_backbone = false;
    for (const auto& n : names) {
      has_teacher |= starts_with(n, "teacher.");
      has_backbone |= starts_with(n, "backbone.") || starts_with(n, "teacher.backbone.") ||
                      starts_with(n, "module.backbone.");
    }
    for (const auto& n : names) {
      std::string s = n;
      if (has_teacher) {
        if (!starts_with(s, "teacher.")) continue;
        s = s.substr(8);
      }
      if (starts_with(s, "module.")) s = s.substr(7);
      if (has_backbone) {
        if (!starts_with(s, "backbone.")) continue;
        s = s.substr(9);
      }
      stripped_[s] = n;
    }
  }

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
      if (stripped_.count(name)) found.push_back(name);
    return found;
  }

  std::string expected_name(const std::string& canonical) const {
    return naming_ == "hf" ? hf_names(canonical).front() : canonical;
  }

  torch::Tensor load(const std::string& stripped_name, const std::vector<std::int64_t>& shape) const {
    return load_checked_tensor(file_, stripped_.at(stripped_name), shape, file_name_);
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
      if (names.empty()) throw InputError(file_name_ + ": missing tensor '" + expected_name(c) + "'");
      qkv.push_back(load(names.front(), part));
    }
    return torch::cat(qkv, 0);
  }

  const SafetensorsFile& file_;
  std::string file_name_;
  std::string naming_;
  std::string hf_prefix_;
  std::map<std::string, std::string> stripped_;  // name without checkpoint prefixes -> name in the file
};

// config.json in attnlens' own keys (tools/train_fmnist_vit.py) or Hugging Face's.
void apply_config(const json& j, VitConfig& c, const std::string& where) {
  VitConfigKeys k{c.num_heads, c.layer_norm_eps, c.labels, c.preprocess, c.mean, c.std};
  read_vit_config_keys(j, k, where);
  c.num_heads = k.num_heads;
  c.layer_norm_eps = k.layer_norm_eps;
  c.labels = std::move(k.labels);
  c.preprocess = std::move(k.preprocess);
  c.mean = std::move(k.mean);
  c.std = std::move(k.std);
}

}  // namespace

VisionTransformer VisionTransformer::load(const std::string& path, const torch::Device& device, int image_size) {
  const fs::path weights = resolve_weights_path(path);
  const SafetensorsFile file = SafetensorsFile::open(weights.string());
  const WeightSource w(file, weights.string());

  VisionTransformer m;
  VitConfig& c = m.config_;
  c.naming = w.naming();
  c.layer_norm_eps = c.naming == "hf" ? 1e-12 : 1e-6;  // each family's default when config.json is silent
  c.preprocess = c.naming == "hf" ? "hf" : "timm-vit";

  // Architecture from the tensor shapes; config.json adds what shapes cannot say (heads, eps, labels).
  const auto cls_shape = w.shape_of("cls_token");
  if (cls_shape.size() != 3) throw InputError(weights.string() + ": cls_token must be [1,1,D]");
  c.embed_dim = static_cast<int>(cls_shape[2]);
  c.depth = w.count_blocks();
  if (c.depth == 0) throw InputError(weights.string() + ": no transformer blocks found");
  const auto patch_shape = w.shape_of("patch_embed.proj.weight");
  if (patch_shape.size() != 4 || patch_shape[2] != patch_shape[3])
    throw InputError(weights.string() + ": the patch embedding must be a square convolution [D,C,p,p]");
  c.patch_size = static_cast<int>(patch_shape[2]);
  c.in_chans = static_cast<int>(patch_shape[1]);
  c.mlp_hidden = static_cast<int>(w.shape_of("blocks.0.mlp.fc1.weight")[0]);
  c.distilled = w.has("dist_token");
  c.num_classes = w.has("head.weight") ? static_cast<int>(w.shape_of("head.weight")[0]) : 0;
  const auto pos_shape = w.shape_of("pos_embed");
  const auto grid_tokens = pos_shape.size() == 3 ? pos_shape[1] - c.prefix_tokens() : -1;
  const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<std::int64_t>(0, grid_tokens)))));
  if (grid_tokens <= 0 || side * side != grid_tokens)
    throw InputError(weights.string() + ": pos_embed must be [1, P + g*g, D], got " + shape_text(pos_shape));
  c.image_height = c.image_width = static_cast<int>(side) * c.patch_size;
  c.num_heads = c.embed_dim % 64 == 0 ? c.embed_dim / 64 : 0;  // timm's head width when nothing says otherwise

  const fs::path config_path = weights.parent_path() / "config.json";
  if (const auto j = read_config_json(config_path.string())) apply_config(*j, c, config_path.string());
  if (c.num_heads <= 0 || c.embed_dim % c.num_heads != 0)
    throw InputError(weights.string() + ": cannot tell the number of attention heads (embed dim " +
                     std::to_string(c.embed_dim) + "); put \"num_heads\" in config.json beside the weights");
  if (!c.labels.empty() && static_cast<int>(c.labels.size()) != c.num_classes)
    throw InputError(config_path.string() + ": " + std::to_string(c.labels.size()) + " labels for " +
                     std::to_string(c.num_classes) + " classes");

  const std::int64_t D = c.embed_dim, F = c.mlp_hidden;
  m.patch_w_ = w.get("patch_embed.proj.weight", {D, c.in_chans, c.patch_size, c.patch_size});
  m.patch_b_ = w.get("patch_embed.proj.bias", {D});
  m.cls_token_ = w.get("cls_token", {1, 1, D});
  if (c.distilled) m.dist_token_ = w.get("dist_token", {1, 1, D});
  m.pos_embed_ = w.get("pos_embed", {1, c.tokens(), D});
  for (int b = 0; b < c.depth; ++b) {
    const std::string p = "blocks." + std::to_string(b) + ".";
    Block k;
    k.norm1_w = w.get(p + "norm1.weight", {D});
    k.norm1_b = w.get(p + "norm1.bias", {D});
    k.qkv_w = w.get(p + "attn.qkv.weight", {3 * D, D});
    k.qkv_b = w.get(p + "attn.qkv.bias", {3 * D});
    k.proj_w = w.get(p + "attn.proj.weight", {D, D});
    k.proj_b = w.get(p + "attn.proj.bias", {D});
    k.norm2_w = w.get(p + "norm2.weight", {D});
    k.norm2_b = w.get(p + "norm2.bias", {D});
    k.fc1_w = w.get(p + "mlp.fc1.weight", {F, D});
    k.fc1_b = w.get(p + "mlp.fc1.bias", {F});
    k.fc2_w = w.get(p + "mlp.fc2.weight", {D, F});
    k.fc2_b = w.get(p + "mlp.fc2.bias", {D});
    m.blocks_.push_back(std::move(k));
  }
  m.norm_w_ = w.get("norm.weight", {D});
  m.norm_b_ = w.get("norm.bias", {D});
  if (c.num_classes > 0) {
    m.head_w_ = w.get("head.weight", {c.num_classes, D});
    m.head_b_ = w.get("head.bias", {c.num_classes});
    if (c.distilled) {
      m.head_dist_w_ = w.get("head_dist.weight", {c.num_classes, D});
      m.head_dist_b_ = w.get("head_dist.bias", {c.num_classes});
    }
  }

  if (image_size > 0 && image_size != c.image_height) {
    // timm's resample_abs_pos_embed: the grid part bicubically resized (align_corners false), prefix kept.
    if (image_size % c.patch_size != 0)
      throw InputError("image size " + std::to_string(image_size) + " is not a multiple of the patch size " +
                       std::to_string(c.patch_size));
    const int old_side = c.grid_h(), new_side = image_size / c.patch_size;
    const auto prefix = m.pos_embed_.narrow(1, 0, c.prefix_tokens());
    auto grid = m.pos_embed_.narrow(1, c.prefix_tokens(), old_side * old_side)
                    .reshape({1, old_side, old_side, D})
                    .permute({0, 3, 1, 2});
    grid = torch::nn::functional::interpolate(grid, torch::nn::functional::InterpolateFuncOptions()
                                                        .size(std::vector<int64_t>{new_side, new_side})
                                                        .mode(torch::kBicubic)
                                                        .align_corners(false));
    m.pos_embed_ = torch::cat({prefix, grid.permute({0, 2, 3, 1}).reshape({1, new_side * new_side, D})}, 1);
    c.image_height = c.image_width = image_size;
  }

  check_device(device);
  m.device_ = device;
  for (torch::Tensor* t : {&m.patch_w_, &m.patch_b_, &m.cls_token_, &m.dist_token_, &m.pos_embed_, &m.norm_w_,
                           &m.norm_b_, &m.head_w_, &m.head_b_, &m.head_dist_w_, &m.head_dist_b_})
    if (t->defined()) *t = t->to(device);
  for (Block& k : m.blocks_)
    for (torch::Tensor* t : {&k.norm1_w, &k.norm1_b, &k.qkv_w, &k.qkv_b, &k.proj_w, &k.proj_b, &k.norm2_w,
                             &k.norm2_b, &k.fc1_w, &k.fc1_b, &k.fc2_w, &k.fc2_b})
      *t = t->to(device);
  return m;
}

torch::Tensor VisionTransformer::run(const torch::Tensor& images, VitCapture* capture) const {
  const VitConfig& c = config_;
  if (images.dim() != 4 || images.size(1) != c.in_chans || images.size(2) != c.image_height ||
      images.size(3) != c.image_width)
    throw InputError("images must be [B," + std::to_string(c.in_chans) + "," + std::to_string(c.image_height) + "," +
                     std::to_string(c.image_width) + "], got " + shape_text(images.sizes().vec()));
  const std::int64_t B = images.size(0), D = c.embed_dim, H = c.num_heads, hd = D / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  namespace F = torch::nn::functional;

  auto x = torch::conv2d(images, patch_w_, patch_b_, c.patch_size).flatten(2).transpose(1, 2);  // [B, G, D]
  std::vector<torch::Tensor> prefix{cls_token_.expand({B, 1, D})};
  if (c.distilled) prefix.push_back(dist_token_.expand({B, 1, D}));
  prefix.push_back(x);
  x = torch::cat(prefix, 1) + pos_embed_;
  const std::int64_t N = x.size(1);
  for (const Block& k : blocks_) {
    auto h = torch::layer_norm(x, {D}, k.norm1_w, k.norm1_b, c.layer_norm_eps);
    auto qkv = torch::linear(h, k.qkv_w, k.qkv_b).reshape({B, N, 3, H, hd}).permute({2, 0, 3, 1, 4});
    // timm's order, (q * scale) k^T; Hugging Face computes (q k^T) * scale: a float rounding difference only.
    auto scores = torch::matmul(qkv[0] * scale, qkv[1].transpose(-2, -1));
    auto attn = torch::softmax(scores, -1);
    if (capture != nullptr) {
      if (scores.requires_grad()) {
        scores.retain_grad();
        attn.retain_grad();
      }
      capture->scores_grad.push_back(scores);  // the tensors now; their gradients after backward
      capture->attention.push_back(attn);
    }
    auto out = torch::matmul(attn, qkv[2]).transpose(1, 2).reshape({B, N, D});
    x = x + torch::linear(out, k.proj_w, k.proj_b);
    h = torch::layer_norm(x, {D}, k.norm2_w, k.norm2_b, c.layer_norm_eps);
    x = x + torch::linear(torch::gelu(torch::linear(h, k.fc1_w, k.fc1_b)), k.fc2_w, k.fc2_b);
  }
  x = torch::layer_norm(x, {D}, norm_w_, norm_b_, c.layer_norm_eps);
  if (c.num_classes == 0) return x.select(1, 0);  // backbone: the CLS features
  auto logits = torch::linear(x.select(1, 0), head_w_, head_b_);
  if (c.distilled) logits = (logits + torch::linear(x.select(1, 1), head_dist_w_, head_dist_b_)) / 2;
  return logits;
}

torch::Tensor VisionTransformer::forward(const torch::Tensor& images) const {
  torch::NoGradGuard no_grad;
  return run(images.to(device_), nullptr);
}

torch::Tensor VisionTransformer::differentiable_forward(const torch::Tensor& images) const {
  return run(images.to(device_), nullptr);
}

VitCapture VisionTransformer::capture(const torch::Tensor& images, const std::vector<std::int64_t>& targets) const {
  VitCapture cap;
  const bool gradients = !targets.empty();
  if (!gradients) {
    torch::NoGradGuard no_grad;
    cap.logits = run(images.to(device_), &cap);
    cap.scores_grad.clear();
    return cap;
  }
  if (static_cast<std::int64_t>(targets.size()) != images.size(0))
    throw InputError("one target class per image is needed");
  auto input = images.to(device_).detach().requires_grad_(true);
  cap.logits = run(input, &cap);
  const std::int64_t C = cap.logits.size(1);
  std::vector<std::int64_t> chosen = targets;
  const auto predicted = cap.logits.detach().argmax(1).to(torch::kCPU);
  for (size_t b = 0; b < chosen.size(); ++b) {
    if (chosen[b] < 0) chosen[b] = predicted[static_cast<std::int64_t>(b)].item<std::int64_t>();
    if (chosen[b] >= C)
      throw InputError("category " + std::to_string(chosen[b]) + " is out of range: the model has " +
                       std::to_string(C) + " classes (0.." + std::to_string(C - 1) + ")");
  }
  auto index = torch::tensor(chosen, torch::kInt64).to(device_).unsqueeze(1);
  // d(sum of target logits): images are independent, so each image's gradients are its own target's.
  cap.logits.gather(1, index).sum().backward();
  for (size_t l = 0; l < cap.attention.size(); ++l) {
    cap.attention_grad.push_back(cap.attention[l].grad().detach());
    cap.scores_grad[l] = cap.scores_grad[l].grad().detach();
    cap.attention[l] = cap.attention[l].detach();
  }
  cap.input_grad = input.grad().detach();
  cap.logits = cap.logits.detach();
  return cap;
}

}  // namespace attnlens
