#include "models/image_classifier.hpp"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/array.hpp"
#include "io/model_config.hpp"
#include "models/checkpoint.hpp"
#include "models/clip.hpp"
#include "models/deit3.hpp"
#include "models/dinov2.hpp"
#include "models/vit.hpp"

namespace attnlens {

namespace {

namespace fs = std::filesystem;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The family a checkpoint belongs to, from config.json's own words where it has them (timm's "architecture",
// Hugging Face's "model_type"), else from the tensor names: each family's marker tensors, in its namings.
std::string detect_family(const CheckpointTensors& w, const std::optional<nlohmann::json>& config,
                          const std::string& config_path) {
  if (config) {
    std::string architecture, model_type;
    read_config_key(*config, "architecture", architecture, config_path);
    read_config_key(*config, "model_type", model_type, config_path);
    if (model_type == "clip" || contains(architecture, "_clip_")) return "clip";
    if (model_type == "dinov2" || model_type == "dinov2_with_registers" || contains(architecture, "dinov2"))
      return "dinov2";
    if (architecture.rfind("deit3_", 0) == 0) return "deit3";
  }
  if (w.has("visual.conv1.weight") || !w.find_suffix("vision_model.embeddings.patch_embedding.weight").empty())
    return "clip";
  if (!w.find_suffix("embeddings.patch_embeddings.projection.weight").empty())
    return w.find_suffix(".layer_scale1.lambda1").empty() ? "vit" : "dinov2";
  if (w.has("patch_embed.proj.weight")) {
    const bool layer_scale = w.has("blocks.0.ls1.gamma") || w.has("blocks.0.gamma_1");
    if (!layer_scale) return "vit";
    if (w.has("mask_token") || w.has("register_tokens") || w.has("reg_token")) return "dinov2";
    // LayerScale without registers: DeiT III's position embeddings cover the patches only (a square count of
    // rows), timm's DINOv2 has a CLS row as well.
    const auto pos = w.has("pos_embed") ? w.shape_of("pos_embed") : std::vector<std::int64_t>{};
    const std::int64_t rows = pos.size() == 3 ? pos[1] : 0;
    const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(rows))));
    return rows > 0 && side * side == rows ? "deit3" : "dinov2";
  }
  throw InputError(w.file_name() +
                   ": unknown tensor naming: it matches no image model family. Tried ViT/DeiT/DINO (timm "
                   "'patch_embed.proj.weight', Hugging Face '[vit.|deit.]embeddings.patch_embeddings.projection."
                   "weight'), DeiT III (timm 'patch_embed.proj.weight' with 'blocks.0.ls1.gamma' or "
                   "'blocks.0.gamma_1'), DINOv2 (hub 'mask_token', timm 'reg_token', Hugging Face "
                   "'[dinov2.]encoder.layer.0.layer_scale1.lambda1'), CLIP (open_clip 'visual.conv1.weight', Hugging "
                   "Face 'vision_model.embeddings.patch_embedding.weight'): none of these is in the file");
}

const char* family_title(const std::string& family) {
  if (family == "deit3") return "DeiT III";
  if (family == "dinov2") return "DINOv2";
  if (family == "clip") return "CLIP";
  return "ViT/DeiT/DINO";
}

}  // namespace

std::string ImageModelConfig::prefix_description() const {
  std::string s = "CLS";
  if (distilled) s += " + distillation";
  if (register_tokens > 0)
    s += " + " + std::to_string(register_tokens) + " register" + (register_tokens == 1 ? "" : "s");
  return s;
}

PositionResize parse_position_resize(const std::string& name) {
  if (name == "bicubic") return PositionResize::Bicubic;
  if (name == "bicubic-antialias") return PositionResize::BicubicAntialias;
  if (name == "offset") return PositionResize::BicubicOffset;
  throw InputError("unknown position-embedding resampling '" + name + "' (known: bicubic, bicubic-antialias, offset)");
}

void ImageClassifier::check_input(const torch::Tensor& images) const {
  const ImageModelConfig& c = config();
  if (images.dim() != 4 || images.size(1) != c.in_chans || images.size(2) != c.image_height ||
      images.size(3) != c.image_width)
    throw InputError("images must be [B," + std::to_string(c.in_chans) + "," + std::to_string(c.image_height) + "," +
                     std::to_string(c.image_width) + "], got " + shape_text(images.sizes().vec()));
}

torch::Tensor ImageClassifier::forward(const torch::Tensor& images, const ForwardRules& rules) const {
  rules.check();
  torch::NoGradGuard no_grad;
  return run(images.to(device_), nullptr, rules);
}

torch::Tensor ImageClassifier::differentiable_forward(const torch::Tensor& images) const {
  return run(images.to(device_), nullptr, {});
}

ImageCapture ImageClassifier::capture(const torch::Tensor& images, const std::vector<std::int64_t>& targets,
                                      const ForwardRules& rules) const {
  rules.check();
  ImageCapture cap;
  const bool gradients = !targets.empty();
  if (!gradients) {
    torch::NoGradGuard no_grad;
    cap.logits = run(images.to(device_), &cap, rules);
    cap.scores_grad.clear();
    return cap;
  }
  if (static_cast<std::int64_t>(targets.size()) != images.size(0))
    throw InputError("one target class per image is needed");
  auto input = images.to(device_).detach().requires_grad_(true);
  cap.logits = run(input, &cap, rules);
  const auto index = target_index(cap.logits, targets, "category");
  // d(sum of target logits): images are independent, so each image's gradients are its own target's.
  cap.logits.gather(1, index).sum().backward();
  // A tensor no gradient reached (CP-LRP's constant attention) reads as zeros.
  const auto grad_of = [](const torch::Tensor& t) {
    const auto g = t.grad();
    return g.defined() ? g.detach() : torch::zeros_like(t);
  };
  for (size_t l = 0; l < cap.attention.size(); ++l) {
    cap.attention_grad.push_back(grad_of(cap.attention[l]));
    cap.scores_grad[l] = grad_of(cap.scores_grad[l]);
    cap.attention[l] = cap.attention[l].detach();
  }
  cap.input_grad = grad_of(input);
  cap.logits = cap.logits.detach();
  return cap;
}

std::unique_ptr<ImageClassifier> load_image_classifier(const std::string& path, const ImageModelOptions& options) {
  const fs::path weights_path = resolve_weights_path(path);
  const CheckpointTensors weights = CheckpointTensors::open(weights_path.string());
  const std::string config_path = (weights_path.parent_path() / "config.json").string();
  const std::string family = detect_family(weights, read_config_json(config_path), config_path);
  if (!options.prompts.empty() && family != "clip")
    throw InputError("--labels gives the classes of a zero-shot model (CLIP) as text prompts; " +
                     weights_path.string() + " is a " + family_title(family) + " classifier");
  if (family == "clip") return std::make_unique<ClipModel>(ClipModel::load(weights, options));
  if (family == "dinov2") return std::make_unique<Dinov2>(Dinov2::load(weights, options));
  if (family == "deit3") return std::make_unique<Deit3>(Deit3::load(weights, options));
  return std::make_unique<VisionTransformer>(VisionTransformer::load(weights, config_path, options));
}

}  // namespace attnlens
