// What the image families' loaders share (internal to attnlens_models): config.json keys every family reads, the
// checks of heads and labels against the weights, the patch grid of a position embedding, and resampling it to the
// input size the model runs at.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/image_classifier.hpp"
#include "models/vision_backbone.hpp"

namespace attnlens {

/// The side g of a square patch grid from a position embedding of shape [1, prefix + g*g, D] or [prefix + g*g, D];
/// InputError "<file>: <name> must be [1, P + g*g, D], got [...]" otherwise.
int square_grid_side(const std::vector<std::int64_t>& shape, int prefix, const std::string& file,
                     const std::string& name);

/// config.json keys of attnlens and of Hugging Face that every image family takes: num_heads / num_attention_heads,
/// layer_norm_eps (into `eps`), labels / id2label, preprocess {preset, mean, std} or image_mean / image_std.
void apply_image_config_keys(const nlohmann::json& j, ImageModelConfig& config, double& eps, const std::string& where);

/// InputError unless config.num_heads divides the width, and unless the labels (when given) are one per class.
void check_heads_and_labels(const ImageModelConfig& config, const std::string& file, const std::string& config_path);

/// Runs the model at `size` x `size` pixels when size > 0 and differs from the input size the position embeddings
/// have: their patch grid resized by `mode` (MODELS.md A.6) and the config's input size set. InputError when the
/// size is not a multiple of the patch size.
void resize_to_image_size(int size, PositionResize mode, ImageModelConfig& config, VisionBackbone& backbone);

/// Hugging Face's hidden_act: "gelu" (exact erf GELU) or "quick_gelu"; InputError for any other activation.
FeedForward activation_named(const std::string& name, const std::string& where);

/// Reads what the timm-named families (ViT/DeiT/DINO, DeiT III, DINOv2) store alike into `b`: the patch convolution
/// with its bias, cls_token, the `depth` blocks "blocks.N." (norm1, attn.qkv, attn.proj, norm2, mlp.fc1 with
/// `fc1_rows` rows, i.e. the hidden width or twice it for SwiGLU, mlp.fc2 back from `mlp_hidden`; LayerScale
/// "blocks.N.<ls1>" and "<ls2>" when those names are not empty) and the final norm, with the encoder's heads and
/// eps. `w` is anything with get(name, shape): the checkpoint itself or a family's view that renames its tensors.
/// Position embeddings, distillation and register tokens and heads differ per family and stay with the caller.
template <class Weights>
void read_timm_backbone(const Weights& w, const ImageModelConfig& c, double layer_norm_eps, std::int64_t mlp_hidden,
                        std::int64_t fc1_rows, const std::string& ls1, const std::string& ls2, VisionBackbone& b) {
  const std::int64_t D = c.embed_dim, F = mlp_hidden;
  b.patch_size = c.patch_size;
  b.patch_w = w.get("patch_embed.proj.weight", {D, c.in_chans, c.patch_size, c.patch_size});
  b.patch_b = w.get("patch_embed.proj.bias", {D});
  b.cls_token = w.get("cls_token", {1, 1, D});
  b.encoder.num_heads = c.num_heads;
  b.encoder.layer_norm_eps = layer_norm_eps;
  for (int i = 0; i < c.depth; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    PreNormBlock k;
    k.norm1_w = w.get(p + "norm1.weight", {D});
    k.norm1_b = w.get(p + "norm1.bias", {D});
    k.qkv_w = w.get(p + "attn.qkv.weight", {3 * D, D});
    k.qkv_b = w.get(p + "attn.qkv.bias", {3 * D});
    k.proj_w = w.get(p + "attn.proj.weight", {D, D});
    k.proj_b = w.get(p + "attn.proj.bias", {D});
    if (!ls1.empty()) k.ls1 = w.get(p + ls1, {D});
    k.norm2_w = w.get(p + "norm2.weight", {D});
    k.norm2_b = w.get(p + "norm2.bias", {D});
    k.fc1_w = w.get(p + "mlp.fc1.weight", {fc1_rows, D});
    k.fc1_b = w.get(p + "mlp.fc1.bias", {fc1_rows});
    k.fc2_w = w.get(p + "mlp.fc2.weight", {D, F});
    k.fc2_b = w.get(p + "mlp.fc2.bias", {D});
    if (!ls2.empty()) k.ls2 = w.get(p + ls2, {D});
    b.encoder.blocks.push_back(std::move(k));
  }
  b.norm_w = w.get("norm.weight", {D});
  b.norm_b = w.get("norm.bias", {D});
}

/// Checks `device` (check_device), then moves the backbone and the family's own tensors there (undefined ones stay).
void move_to_device(const torch::Device& device, VisionBackbone& backbone, std::initializer_list<torch::Tensor*> tensors);

/// The folder holding the weights file: where its config files are.
std::string model_folder(const std::string& weights_file);

}  // namespace attnlens
