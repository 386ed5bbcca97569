#include "models/vision_backbone.hpp"

#include <cmath>

namespace attnlens {

namespace {

torch::Tensor feed_forward_branch(const torch::Tensor& h, const PreNormBlock& k, FeedForward kind) {
  const auto u = torch::linear(h, k.fc1_w, k.fc1_b);
  switch (kind) {
    case FeedForward::Gelu:
      return torch::linear(torch::gelu(u), k.fc2_w, k.fc2_b);
    case FeedForward::QuickGelu:
      return torch::linear(u * torch::sigmoid(1.702 * u), k.fc2_w, k.fc2_b);
    case FeedForward::SwiGlu: {
      const auto halves = u.chunk(2, -1);
      return torch::linear(torch::silu(halves[0]) * halves[1], k.fc2_w, k.fc2_b);
    }
  }
  return {};
}

void move(torch::Tensor& t, const torch::Device& device) {
  if (t.defined()) t = t.to(device);
}

}  // namespace

torch::Tensor PreNormEncoder::run(torch::Tensor x, const torch::Tensor& mask, ImageCapture* capture) const {
  const std::int64_t B = x.size(0), N = x.size(1), D = x.size(2), H = num_heads, hd = D / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (const PreNormBlock& k : blocks) {
    auto h = torch::layer_norm(x, {D}, k.norm1_w, k.norm1_b, layer_norm_eps);
    auto qkv = torch::linear(h, k.qkv_w, k.qkv_b).reshape({B, N, 3, H, hd}).permute({2, 0, 3, 1, 4});
    // (q * scale) k^T as timm, DINOv2 and open_clip compute it; Hugging Face scales the product instead, which for
    // d = 64 (a power of two) is the same to the bit and for DeiT III huge's d = 80 differs by ~1e-6.
    auto scores = torch::matmul(qkv[0] * scale, qkv[1].transpose(-2, -1));
    if (mask.defined()) scores = scores + mask;
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
    auto branch = torch::linear(out, k.proj_w, k.proj_b);
    x = x + (k.ls1.defined() ? branch * k.ls1 : branch);
    h = torch::layer_norm(x, {D}, k.norm2_w, k.norm2_b, layer_norm_eps);
    branch = feed_forward_branch(h, k, feed_forward);
    x = x + (k.ls2.defined() ? branch * k.ls2 : branch);
  }
  return x;
}

void PreNormEncoder::to(const torch::Device& device) {
  for (PreNormBlock& k : blocks)
    for (torch::Tensor* t : {&k.norm1_w, &k.norm1_b, &k.qkv_w, &k.qkv_b, &k.proj_w, &k.proj_b, &k.ls1, &k.norm2_w,
                             &k.norm2_b, &k.fc1_w, &k.fc1_b, &k.fc2_w, &k.fc2_b, &k.ls2})
      move(*t, device);
}

torch::Tensor VisionBackbone::tokens(const torch::Tensor& images, ImageCapture* capture) const {
  const std::int64_t B = images.size(0), D = cls_token.size(2);
  auto x = torch::conv2d(images, patch_w, patch_b, patch_size).flatten(2).transpose(1, 2);  // [B, G, D]
  if (pos_prefix == 0) x = x + pos_embed;
  std::vector<torch::Tensor> parts{cls_token.expand({B, 1, D})};
  if (dist_token.defined()) parts.push_back(dist_token.expand({B, 1, D}));
  if (pos_prefix == 0 && registers.defined()) parts.push_back(registers.expand({B, registers.size(1), D}));
  parts.push_back(x);
  x = torch::cat(parts, 1);
  if (pos_prefix > 0) {
    x = x + pos_embed;
    if (registers.defined()) {  // after CLS, and after the position embeddings: registers have none
      const std::int64_t n = x.size(1);
      x = torch::cat({x.narrow(1, 0, pos_prefix), registers.expand({B, registers.size(1), D}),
                      x.narrow(1, pos_prefix, n - pos_prefix)},
                     1);
    }
  }
  if (pre_norm_w.defined()) x = torch::layer_norm(x, {D}, pre_norm_w, pre_norm_b, encoder.layer_norm_eps);
  x = encoder.run(x, {}, capture);
  return torch::layer_norm(x, {D}, norm_w, norm_b, encoder.layer_norm_eps);
}

void VisionBackbone::resize_positions(int gh, int gw, int new_h, int new_w, PositionResize mode) {
  if (gh == new_h && gw == new_w) return;  // every source skips the resampling then
  const std::int64_t D = pos_embed.size(2);
  const auto prefix = pos_embed.narrow(1, 0, pos_prefix);
  auto grid = pos_embed.narrow(1, pos_prefix, static_cast<std::int64_t>(gh) * gw)
                  .reshape({1, gh, gw, D})
                  .permute({0, 3, 1, 2});
  const std::vector<std::int64_t> size{new_h, new_w};
  switch (mode) {
    case PositionResize::Bicubic:
      grid = torch::nn::functional::interpolate(
          grid, torch::nn::functional::InterpolateFuncOptions().size(size).mode(torch::kBicubic).align_corners(false));
      break;
    case PositionResize::BicubicAntialias:
      grid = torch::_upsample_bicubic2d_aa(grid, size, false, c10::nullopt, c10::nullopt);
      break;
    case PositionResize::BicubicOffset:
      // DINOv2's interpolate(scale_factor=((h0 + 0.1) / M, (w0 + 0.1) / M)): the output is h0 x w0, but source
      // coordinates follow the given factors, not h0 / M.
      grid = torch::upsample_bicubic2d(grid, size, false, (new_h + 0.1) / gh, (new_w + 0.1) / gw);
      break;
  }
  pos_embed =
      torch::cat({prefix, grid.permute({0, 2, 3, 1}).reshape({1, static_cast<std::int64_t>(new_h) * new_w, D})}, 1);
}

void VisionBackbone::to(const torch::Device& device) {
  for (torch::Tensor* t : {&patch_w, &patch_b, &cls_token, &dist_token, &registers, &pos_embed, &pre_norm_w,
                           &pre_norm_b, &norm_w, &norm_b})
    move(*t, device);
  encoder.to(device);
}

}  // namespace attnlens
