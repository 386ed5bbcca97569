#include "models/vision_backbone.hpp"

#include <cmath>
#include <string>

#include "core/array.hpp"

namespace attnlens {

namespace {

torch::Tensor feed_forward_branch(const torch::Tensor& h, const PreNormBlock& k, FeedForward kind,
                                  const ForwardRules& rules) {
  const auto u = rules.linear(h, k.fc1_w, k.fc1_b, LinearSite::FeedForward);
  torch::Tensor inner;
  switch (kind) {
    case FeedForward::Gelu:
      inner = rules.activation(u, Activation::Gelu);
      break;
    case FeedForward::QuickGelu:
      inner = rules.activation(u, Activation::QuickGelu);
      break;
    case FeedForward::SwiGlu: {
      const auto halves = u.chunk(2, -1);
      // The gate times the value: AttnLRP halves the product's gradient (uniform rule), CP-LRP detaches the gate
      // (spec 14.2 d, e).
      const auto gate = rules.activation(halves[0], Activation::Silu);
      inner = rules.lrp == LrpRules::Cp ? gate.detach() * halves[1] : rules.bilinear_product(gate * halves[1]);
      break;
    }
  }
  return rules.linear(inner, k.fc2_w, k.fc2_b, LinearSite::FeedForward);
}

void move(torch::Tensor& t, const torch::Device& device) {
  if (t.defined()) t = t.to(device);
}

}  // namespace

torch::Tensor PreNormEncoder::run(torch::Tensor x, const torch::Tensor& mask, ImageCapture* capture,
                                  const ForwardRules& rules) const {
  const std::int64_t B = x.size(0), N = x.size(1), D = x.size(2), H = num_heads, hd = D / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  if (rules.key_factors.defined() &&
      rules.key_factors.sizes() != torch::IntArrayRef({B, N}))
    throw InputError("AtMan's key factors must be [" + std::to_string(B) + "," + std::to_string(N) + "]");
  const auto factors = rules.key_factors.defined() ? rules.key_factors.to(x.options()).view({B, 1, 1, N})
                                                   : torch::Tensor();
  for (const PreNormBlock& k : blocks) {
    if (capture != nullptr && rules.record_values) capture->block_input.push_back(x.detach());
    auto h = rules.layer_norm(x, k.norm1_w, k.norm1_b, layer_norm_eps);
    // AG-CAM: a fresh leaf, so dy/dA exists but no gradient leaves the attention branch.
    if (rules.detach_attention_input) h = h.detach().requires_grad_(x.requires_grad());
    auto qkv = rules.linear(h, k.qkv_w, k.qkv_b, LinearSite::AttentionProjection)
                   .reshape({B, N, 3, H, hd})
                   .permute({2, 0, 3, 1, 4});
    auto q = qkv[0], key = qkv[1];
    if (rules.lrp == LrpRules::Cp) {  // attention probabilities as constant mixing weights
      q = q.detach();
      key = key.detach();
    }
    // (q * scale) k^T as timm, DINOv2 and open_clip compute it; Hugging Face scales the product instead, which for
    // d = 64 (a power of two) is the same to the bit and for DeiT III huge's d = 80 differs by ~1e-6.
    auto scores = rules.bilinear_product(torch::matmul(q * scale, key.transpose(-2, -1)));
    // AtMan: shift each row to be >= 0, then scale the suppressed key columns (spec 18.1; the shift and the
    // positive 1/sqrt(d) commute).
    if (factors.defined()) scores = (scores - scores.amin(-1, true)) * factors;
    if (mask.defined()) scores = scores + mask;
    auto attn = torch::softmax(scores, -1);
    if (capture != nullptr) {
      if (scores.requires_grad()) scores.retain_grad();
      if (attn.requires_grad()) attn.retain_grad();
      capture->scores_grad.push_back(scores);  // the tensors now; their gradients after backward
      capture->attention.push_back(attn);
      if (rules.record_scores) capture->scores.push_back(scores.detach());
      if (rules.record_values) {
        const auto values = qkv[2].transpose(1, 2).reshape({B, N, D});
        capture->value_proj.push_back(torch::linear(values, k.proj_w).detach());
      }
    }
    auto out = rules.bilinear_product(torch::matmul(attn, qkv[2])).transpose(1, 2).reshape({B, N, D});
    auto branch = rules.linear(out, k.proj_w, k.proj_b, LinearSite::AttentionProjection);
    x = x + (k.ls1.defined() ? branch * k.ls1 : branch);
    h = rules.layer_norm(x, k.norm2_w, k.norm2_b, layer_norm_eps);
    branch = feed_forward_branch(h, k, feed_forward, rules);
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

torch::Tensor VisionBackbone::tokens(const torch::Tensor& images, ImageCapture* capture,
                                     const ForwardRules& rules) const {
  const std::int64_t B = images.size(0), D = cls_token.size(2);
  auto x = rules.patch_conv(images, patch_w, patch_b, patch_size).flatten(2).transpose(1, 2);  // [B, G, D]
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
  if (pre_norm_w.defined()) x = rules.layer_norm(x, pre_norm_w, pre_norm_b, encoder.layer_norm_eps);
  x = encoder.run(x, {}, capture, rules);
  return rules.layer_norm(x, norm_w, norm_b, encoder.layer_norm_eps);
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
