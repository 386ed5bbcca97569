// chefer-lrp: Chefer, Gur & Wolf, CVPR 2021, "Transformer Interpretability Beyond Attention Visualization" (spec
// 15), the exact LRP of their ViT_LRP.py with the rules of layers_ours.py. The relevance starts as the one-hot of
// the class and flows back by explicit rules: Linear alpha 1 beta 0 (bias ignored), Add z-rule rescaled to the
// branches' |sums| (conservative), Clone merging, LayerNorm/GELU/softmax as identities, IndexSelect on CLS, and both
// attention products by the z-rule with each operand's share halved. Per block this gives R_A, the relevance of the
// attention probabilities; with dA, the ordinary gradient of the raw logit, the paper's map is
// C = prod_{b >= s} (mean_h max(0, dA * R_A) + I), deeper blocks on the left, read at [CLS, patches]. The other
// variants (15.5): rollout of mean_h max(0, R_A), the last block's mean_h max(0, R_A), and full, the pixel relevance
// of the zB rule on the patch embedding summed over channels and, to give a patch map, over each patch's pixels.
//
// On text (spec 15.7, BERT_explainability; RoBERTa and DistilBERT by the same rules) the same rules run through the
// post-norm layers: the output sub-layers' LayerNorm as identity then Add([branch, residual]), q, k and v reading
// their own clones of the layer input, the scores' mask Add (zeros: one text, no padding), and the head as BERT's
// classifier, pooler activation (identity) and IndexSelect on the first token. Its map is the BERT generator's.
//
// The rules are the closed forms of 15.8a, so no module is run twice; the method keeps every layer's input from its
// own forward pass over the backbone's weights (the reference stores them by hooks), mirroring
// PreNormEncoder::run. DeiT III's LayerScale multiplies a branch by constant per-channel factors: its z-rule passes
// the relevance unchanged, so x + ls * branch is Add([x, ls * branch]) with the branch's relevance handed on as is.
#include "explain/chefer_lrp.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>

#include "explain/model_method.hpp"
#include "models/arrays.hpp"
#include "models/vision_backbone.hpp"

namespace attnlens {
namespace chefer_lrp {

namespace {

// safe_divide of two contiguous tensors of one shape and floating type, in one pass. As six tensor operations it
// was a sixth of chefer-lrp's time on the DeiT-tiny benchmark; the arithmetic is the same, so are the values.
template <typename T>
void safe_divide_run(std::int64_t n, const T* __restrict a, const T* __restrict b, T* __restrict out) {
  const T tiny = static_cast<T>(1e-9);
  for (std::int64_t i = 0; i < n; ++i) {
    // max(b, tiny) + min(b, tiny) is b + tiny (one addition of the same two numbers); written so, it vectorises.
    const T v = b[i];
    T den = v + tiny;
    const T zero = den == 0 ? T(1) : T(0), nonzero = v != 0 ? T(1) : T(0);
    den = den + tiny * zero;
    out[i] = a[i] / den * nonzero;
  }
}

}  // namespace

torch::Tensor safe_divide(const torch::Tensor& a, const torch::Tensor& b) {
  // The reference's clamp(min) + clamp(max) is always b + 1e-9; exactly 0 only at b = -1e-9, then 1e-9 more.
  if (a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() && a.is_floating_point() &&
      a.scalar_type() != torch::kHalf && a.scalar_type() != torch::kBFloat16 && a.device().is_cpu() &&
      b.device().is_cpu()) {
    const auto ac = a.contiguous(), bc = b.contiguous();
    auto out = torch::empty_like(ac);
    AT_DISPATCH_FLOATING_TYPES(ac.scalar_type(), "safe_divide", [&] {
      const auto *ap = ac.data_ptr<scalar_t>(), *bp = bc.data_ptr<scalar_t>();
      auto* op = out.data_ptr<scalar_t>();
      at::parallel_for(0, ac.numel(), 16384, [&](auto lo, auto hi) {
        safe_divide_run<scalar_t>(hi - lo, ap + lo, bp + lo, op + lo);
      });
    });
    return out;
  }
  auto den = b.clamp_min(1e-9) + b.clamp_max(1e-9);
  den = den + den.eq(0).to(den.scalar_type()) * 1e-9;
  return a / den * b.ne(0).to(b.scalar_type());
}

torch::Tensor linear_relprop(const torch::Tensor& R, const torch::Tensor& x, const torch::Tensor& weight) {
  const auto wp = weight.clamp_min(0), wn = weight.clamp_max(0), xp = x.clamp_min(0), xn = x.clamp_max(0);
  const auto S = safe_divide(R, torch::linear(xp, wp) + torch::linear(xn, wn));
  return xp * torch::matmul(S, wp) + xn * torch::matmul(S, wn);
}

std::pair<torch::Tensor, torch::Tensor> add_relprop(const torch::Tensor& R, const torch::Tensor& x0,
                                                    const torch::Tensor& x1) {
  const auto S = safe_divide(R, x0 + x1);
  auto a = x0 * S, b = x1 * S;
  const auto A = a.sum(), B = b.sum(), T = R.sum();
  const auto total = A.abs() + B.abs();
  a = a * safe_divide(safe_divide(A.abs(), total) * T, A);
  b = b * safe_divide(safe_divide(B.abs(), total) * T, B);
  return {a, b};
}

torch::Tensor clone_relprop(const std::vector<torch::Tensor>& R, const torch::Tensor& x) {
  auto sum = torch::zeros_like(x);
  for (const auto& r : R) sum = sum + safe_divide(r, x);
  return x * sum;
}

std::pair<torch::Tensor, torch::Tensor> matmul_relprop(const torch::Tensor& R, const torch::Tensor& a,
                                                       const torch::Tensor& b) {
  const auto S = safe_divide(R, torch::matmul(a, b));
  return {a * torch::matmul(S, b.transpose(-2, -1)), b * torch::matmul(a.transpose(-2, -1), S)};
}

torch::Tensor patch_conv_relprop(const torch::Tensor& R, const torch::Tensor& x, const torch::Tensor& weight,
                                 std::int64_t stride) {
  const std::int64_t B = x.size(0);
  const auto lo = (x * 0 + x.reshape({B, -1}).amin(1).view({B, 1, 1, 1})),
             hi = (x * 0 + x.reshape({B, -1}).amax(1).view({B, 1, 1, 1}));
  const auto wp = weight.clamp_min(0), wn = weight.clamp_max(0);
  const auto conv = [&](const torch::Tensor& in, const torch::Tensor& w) { return torch::conv2d(in, w, {}, stride); };
  // The transposed convolution back to the input's size (kernel = stride: no output padding).
  const auto back = [&](const torch::Tensor& s, const torch::Tensor& w) {
    return torch::conv_transpose2d(s, w, {}, stride);
  };
  const auto Za = conv(x, weight) - conv(lo, wp) - conv(hi, wn) + 1e-9;  // plain division, as the reference
  const auto S = R / Za;
  return x * back(S, weight) - lo * back(S, wp) - hi * back(S, wn);
}

Variant parse_variant(const std::string& name) {
  if (name == "transformer_attribution") return Variant::TransformerAttribution;
  if (name == "rollout") return Variant::Rollout;
  if (name == "last_layer") return Variant::LastLayer;
  if (name == "full") return Variant::Full;
  throw InputError("unknown chefer-lrp variant '" + name +
                   "' (known: transformer_attribution, rollout, last_layer, full)");
}

namespace {

// Every module input of one block's forward pass, detached (what the reference's hooks keep).
struct BlockInputs {
  torch::Tensor x, h1, q, k, v, attn, out, branch1, mid, h2, g, branch2;
};

bool one_cls_head(const ImageModelConfig& c) {
  return (c.family == "vit" || c.family == "deit3") && !c.distilled && c.register_tokens == 0;
}

std::string what_it_is(const ImageModelConfig& c) {
  if (c.distilled) return "distilled DeiT (CLS + distillation token, two heads)";
  if (c.family == "dinov2") return "DINOv2 model";
  if (c.family == "clip") return "CLIP model";
  return c.family + " model with " + c.prefix_description() + " prefix tokens";
}

// The forward's logits and its attention matrices (still in the graph), with the ordinary gradient of the raw
// target logit with respect to each (nothing else accumulates a gradient).
void record_forward(AttentionTrace& t, const torch::Tensor& logits, const std::vector<torch::Tensor>& attention,
                    std::int64_t target) {
  const auto grads = torch::autograd::grad({logits[0][target]}, attention);
  t.logits = logits.detach();
  for (std::size_t b = 0; b < attention.size(); ++b) {
    t.attention.push_back(attention[b].detach()[0]);
    t.attention_grad.push_back(grads[b][0]);
  }
}

void check_fits(const ImageModelConfig& c) {
  if (!one_cls_head(c))
    throw InputError("chefer-lrp needs a ViT with one CLS head (timm ViT/DeiT, DeiT III); this is a " +
                     what_it_is(c));
}

}  // namespace

Trace trace(const ImageClassifier& model, const torch::Tensor& image, std::int64_t target, bool full) {
  const ImageModelConfig& c = model.config();
  check_fits(c);
  const VisionBackbone* bb = model.vision_backbone();
  const auto [head_w, head_b] = model.cls_head();
  if (bb == nullptr || !head_w.defined() || bb->dist_token.defined() || bb->registers.defined() ||
      bb->pre_norm_w.defined() || bb->encoder.feed_forward != FeedForward::Gelu)
    throw InputError("chefer-lrp needs a ViT with one CLS head (timm ViT/DeiT, DeiT III); this model's layers "
                     "differ");
  if (target < 0 || target >= head_w.size(0)) throw InputError("chefer-lrp: class out of range");
  const PreNormEncoder& enc = bb->encoder;
  const double eps = enc.layer_norm_eps;

  // ---- forward, as VisionBackbone::tokens and PreNormEncoder::run, keeping every module's input ----
  const torch::Tensor img = image.unsqueeze(0).to(model.device());
  torch::Tensor embedded, add0, add1, x;  // the top-level Add's inputs (add0 + add1)
  {
    torch::NoGradGuard no_grad;
    embedded = torch::conv2d(img, bb->patch_w, bb->patch_b, bb->patch_size).flatten(2).transpose(1, 2);  // [1,G,D]
    const auto cls = bb->cls_token.expand({1, 1, bb->cls_token.size(2)});
    if (bb->pos_prefix == 0) {  // DeiT III: positions on the patches only, CLS without
      add0 = embedded, add1 = bb->pos_embed;
      x = torch::cat({cls, add0 + add1}, 1);
    } else {
      add0 = torch::cat({cls, embedded}, 1), add1 = bb->pos_embed;
      x = add0 + add1;
    }
  }
  // The backward needs a graph from every attention matrix to the logit only: the blocks' input is its root.
  x = x.detach().requires_grad_(true);
  const std::int64_t N = x.size(1), D = x.size(2), H = enc.num_heads, hd = D / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<BlockInputs> kept;
  std::vector<torch::Tensor> attention;
  for (const PreNormBlock& k : enc.blocks) {
    BlockInputs in;
    in.x = x.detach();
    const auto h1 = torch::layer_norm(x, {D}, k.norm1_w, k.norm1_b, eps);
    const auto qkv = torch::linear(h1, k.qkv_w, k.qkv_b).reshape({1, N, 3, H, hd}).permute({2, 0, 3, 1, 4});
    const auto attn = torch::softmax(torch::matmul(qkv[0] * scale, qkv[1].transpose(-2, -1)), -1);
    attention.push_back(attn);
    const auto out = torch::matmul(attn, qkv[2]).transpose(1, 2).reshape({1, N, D});
    auto branch = torch::linear(out, k.proj_w, k.proj_b);
    if (k.ls1.defined()) branch = branch * k.ls1;
    const auto mid = x + branch;
    const auto h2 = torch::layer_norm(mid, {D}, k.norm2_w, k.norm2_b, eps);
    const auto g = torch::gelu(torch::linear(h2, k.fc1_w, k.fc1_b));
    auto branch2 = torch::linear(g, k.fc2_w, k.fc2_b);
    if (k.ls2.defined()) branch2 = branch2 * k.ls2;
    x = mid + branch2;
    in.h1 = h1.detach(), in.q = qkv[0].detach(), in.k = qkv[1].detach(), in.v = qkv[2].detach();
    in.attn = attn.detach(), in.out = out.detach(), in.branch1 = branch.detach(), in.mid = mid.detach();
    in.h2 = h2.detach(), in.g = g.detach(), in.branch2 = branch2.detach();
    kept.push_back(std::move(in));
  }
  const auto final_tokens = torch::layer_norm(x, {D}, bb->norm_w, bb->norm_b, eps);
  const auto cls_features = final_tokens.select(1, 0);
  Trace t;
  record_forward(t, torch::linear(cls_features, head_w, head_b), attention, target);

  // ---- relevance pass (spec 15.4) ----
  torch::NoGradGuard no_grad;
  const auto one_hot = torch::zeros_like(t.logits).index_put_({0, target}, 1.0);
  const auto cls_in = cls_features.detach();
  const auto r_cls = linear_relprop(one_hot, cls_in, head_w);  // [1, D]
  t.head_relevance = r_cls[0];
  // IndexSelect(token 0), then the final LayerNorm as the identity.
  auto R = torch::zeros({1, N, D}, r_cls.options());
  R.select(1, 0).copy_(cls_in * safe_divide(r_cls, cls_in));
  t.block_relevance.resize(kept.size());
  t.attention_relevance.resize(kept.size());
  for (std::size_t b = kept.size(); b-- > 0;) {
    const BlockInputs& in = kept[b];
    const PreNormBlock& k = enc.blocks[b];
    auto [r_skip2, r_branch2] = add_relprop(R, in.mid, in.branch2);  // LayerScale: handed on unchanged
    const auto r_h2 = linear_relprop(linear_relprop(r_branch2, in.g, k.fc2_w), in.h2, k.fc1_w);  // GELU: identity
    const auto r_mid = clone_relprop({r_skip2, r_h2}, in.mid);  // norm2: identity
    auto [r_skip1, r_branch1] = add_relprop(r_mid, in.x, in.branch1);
    const auto r_out = linear_relprop(r_branch1, in.out, k.proj_w).reshape({1, N, H, hd}).transpose(1, 2);
    auto [r_attn, r_v] = matmul_relprop(r_out, in.attn, in.v);
    r_attn = r_attn / 2, r_v = r_v / 2;
    t.attention_relevance[b] = r_attn[0];
    // Softmax: identity. q kᵀ without the 1/sqrt(d) scale (applied outside the reference's module; the z-rule is
    // scale-invariant up to its 1e-9).
    auto [r_q, r_kt] = matmul_relprop(r_attn, in.q, in.k.transpose(-2, -1));
    const auto r_qkv =
        torch::stack({r_q / 2, r_kt.transpose(-2, -1) / 2, r_v}, 0).permute({1, 3, 0, 2, 4}).reshape({1, N, 3 * D});
    const auto r_h1 = linear_relprop(r_qkv, in.h1, k.qkv_w);
    R = clone_relprop({r_skip1, r_h1}, in.x);  // norm1: identity
    t.block_relevance[b] = R[0];
  }
  if (!full) return t;

  // Below the blocks: the position Add, then the patches (CLS dropped) through the zB rule.
  const std::int64_t G = embedded.size(1);
  const auto [r_tokens, r_pos] = add_relprop(bb->pos_prefix == 0 ? R.narrow(1, 1, G) : R, add0, add1);
  t.token_relevance = r_tokens[0];
  t.position_relevance = r_pos[0];
  const auto r_patches = r_tokens.narrow(1, r_tokens.size(1) - G, G);
  const auto r_conv = r_patches.transpose(1, 2).reshape({1, D, c.grid_h(), c.grid_w()});
  t.pixel_relevance = patch_conv_relprop(r_conv, img, bb->patch_w, bb->patch_size).sum(1)[0];
  return t;
}

Array patch_map(const Trace& t, Variant variant, int start_layer, const ImageModelConfig& c, bool ablation) {
  const std::int64_t L = static_cast<std::int64_t>(t.attention_relevance.size()), P = c.prefix_tokens();
  const std::int64_t gh = c.grid_h(), gw = c.grid_w(), p = c.patch_size;
  if (variant == Variant::Full) {
    if (!t.pixel_relevance.defined()) throw InputError("chefer-lrp: the trace has no pixel relevance");
    return to_array(t.pixel_relevance.view({gh, p, gw, p}).sum({1, 3}));
  }
  if (variant == Variant::LastLayer) {
    auto cam = t.attention_relevance[L - 1];
    if (ablation) cam = t.attention_grad[L - 1] * cam;
    return to_array(cam.clamp_min(0).mean(0)[0].narrow(0, P, gh * gw).view({gh, gw}));
  }
  if (start_layer < 0 || start_layer >= L)
    throw InputError("--start-layer " + std::to_string(start_layer) + " is out of range: the model has " +
                     std::to_string(L) + " blocks (0.." + std::to_string(L - 1) + ")");
  torch::Tensor joint;  // M_b = mean_h max(0, ...) + I, no row normalisation; deeper blocks on the left
  for (std::int64_t b = start_layer; b < L; ++b) {
    const auto& r = t.attention_relevance[b];
    const auto cam = (variant == Variant::Rollout ? r : t.attention_grad[b] * r).clamp_min(0).mean(0);
    const auto m = cam + torch::eye(cam.size(0), cam.options());
    joint = joint.defined() ? torch::matmul(m, joint) : m;
  }
  return to_array(joint[0].narrow(0, P, gh * gw).view({gh, gw}));
}

TextTrace trace_text(const TextClassifier& model, const TextBatch& text, std::int64_t target) {
  const TextClassifierConfig& c = model.config();
  if (text.size() != 1 || text.attention_mask.min().item<std::int64_t>() == 0)
    throw InputError("chefer-lrp explains one text at a time, without padding");
  const TextClassifier::TokenHead head = model.token_head();
  if (target < 0 || target >= head.out_w.size(0)) throw InputError("chefer-lrp: class out of range");
  const std::int64_t T = text.length(), D = c.hidden_size, H = c.num_heads, hd = c.head_dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd)), eps = c.layer_norm_eps;
  const Activation act = activation_of(c.hidden_act);
  const ForwardRules plain;

  // ---- forward over the layers' weights, keeping every module's input (post-norm layers, spec 15.7) ----
  torch::Tensor x;
  {
    torch::NoGradGuard no_grad;
    x = model.embedding_output(text);
  }
  x = x.detach().requires_grad_(true);  // the relevance pass stops here: the encoder input
  struct LayerInputs {
    torch::Tensor x, q, k, v, scores, attn, ctx, a_out, mid, inner, f_out;
  };
  std::vector<LayerInputs> kept;
  std::vector<torch::Tensor> attention;
  const auto split = [&](const torch::Tensor& t) { return t.view({1, T, H, hd}).permute({0, 2, 1, 3}); };
  for (const TextClassifier::EncoderLayer& k : model.layers()) {
    LayerInputs in;
    in.x = x.detach();
    const auto q = split(torch::linear(x, k.q_w, k.q_b)), key = split(torch::linear(x, k.k_w, k.k_b)),
               v = split(torch::linear(x, k.v_w, k.v_b));
    const auto scores = torch::matmul(q, key.transpose(-2, -1)) * scale;  // + a mask of zeros: no padding
    const auto attn = torch::softmax(scores, -1);
    attention.push_back(attn);
    const auto ctx = torch::matmul(attn, v).permute({0, 2, 1, 3}).reshape({1, T, D});
    const auto a_out = torch::linear(ctx, k.out_w, k.out_b);
    const auto mid = torch::layer_norm(a_out + x, {D}, k.ln1_w, k.ln1_b, eps);
    const auto inner = plain.activation(torch::linear(mid, k.ffn_in_w, k.ffn_in_b), act);
    const auto f_out = torch::linear(inner, k.ffn_out_w, k.ffn_out_b);
    x = torch::layer_norm(f_out + mid, {D}, k.ln2_w, k.ln2_b, eps);
    in.q = q.detach(), in.k = key.detach(), in.v = v.detach(), in.scores = scores.detach(), in.attn = attn.detach();
    in.ctx = ctx.detach(), in.a_out = a_out.detach(), in.mid = mid.detach(), in.inner = inner.detach();
    in.f_out = f_out.detach();
    kept.push_back(std::move(in));
  }
  const auto first = x.select(1, 0);
  const auto pooled = plain.activation(torch::linear(first, head.dense_w, head.dense_b), head.activation);
  TextTrace t;
  record_forward(t, torch::linear(pooled, head.out_w, head.out_b), attention, target);

  // ---- relevance pass: classifier, pooler (activation: identity), IndexSelect(token 0), then the layers ----
  torch::NoGradGuard no_grad;
  const auto one_hot = torch::zeros_like(t.logits).index_put_({0, target}, 1.0);
  const auto first_in = first.detach();
  const auto r_first = linear_relprop(linear_relprop(one_hot, pooled.detach(), head.out_w), first_in, head.dense_w);
  t.head_relevance = r_first[0];
  auto R = torch::zeros({1, T, D}, r_first.options());
  R.select(1, 0).copy_(first_in * safe_divide(r_first, first_in));
  t.layer_relevance.resize(kept.size());
  t.attention_relevance.resize(kept.size());
  for (std::size_t l = kept.size(); l-- > 0;) {
    const LayerInputs& in = kept[l];
    const TextClassifier::EncoderLayer& k = model.layers()[l];
    // Output sub-layer: LayerNorm (identity), then Add([dense branch, residual]).
    const auto [r_f, r_mid_skip] = add_relprop(R, in.f_out, in.mid);
    const auto r_mid_branch =
        linear_relprop(linear_relprop(r_f, in.inner, k.ffn_out_w), in.mid, k.ffn_in_w);  // activation: identity
    const auto r_mid = clone_relprop({r_mid_branch, r_mid_skip}, in.mid);
    const auto [r_a, r_x_skip] = add_relprop(r_mid, in.a_out, in.x);
    const auto r_ctx = linear_relprop(r_a, in.ctx, k.out_w).view({1, T, H, hd}).permute({0, 2, 1, 3});
    auto [r_attn, r_v] = matmul_relprop(r_ctx, in.attn, in.v);
    r_attn = r_attn / 2, r_v = r_v / 2;
    t.attention_relevance[l] = r_attn[0];
    // Softmax: identity; scores + mask through the rescaling Add, the mask's share discarded; the 1/sqrt(d) scale
    // is a plain operation the relevance passes; q kᵀ by the z-rule, both halves halved, the key's transposed back.
    const auto r_scores = add_relprop(r_attn, in.scores, torch::zeros_like(in.scores)).first;
    auto [r_q, r_kt] = matmul_relprop(r_scores, in.q, in.k.transpose(-2, -1));
    const auto merge = [&](const torch::Tensor& r) { return r.permute({0, 2, 1, 3}).reshape({1, T, D}); };
    const auto r_xq = linear_relprop(merge(r_q / 2), in.x, k.q_w);
    const auto r_xk = linear_relprop(merge(r_kt.transpose(-2, -1) / 2), in.x, k.k_w);
    const auto r_xv = linear_relprop(merge(r_v), in.x, k.v_w);
    // q, k and v read their own clones of the attention's input; that input and the residual are a 2-way Clone.
    R = clone_relprop({clone_relprop({r_xq, r_xk, r_xv}, in.x), r_x_skip}, in.x);
    t.layer_relevance[l] = R[0];
  }
  return t;
}

std::vector<double> token_scores(const TextTrace& t, Variant variant, int start_layer) {
  const std::int64_t L = static_cast<std::int64_t>(t.attention_relevance.size());
  torch::Tensor row;
  if (variant == Variant::Full) {
    row = t.layer_relevance[0].sum(1).clone();
    row[0] = 0.0;
  } else if (variant == Variant::LastLayer) {
    row = t.attention_relevance[L - 1].clamp_min(0).mean(0)[0].clone();
    row[0] = 0.0;
  } else if (variant == Variant::Rollout) {
    throw InputError("chefer-lrp's rollout variant is for images (the BERT reference has no LRP rollout); on text: "
                     "transformer_attribution, last_layer or full");
  } else {
    const std::int64_t s = start_layer < 0 ? L + start_layer : start_layer;
    if (s < 0 || s >= L)
      throw InputError("--text-start-layer " + std::to_string(start_layer) + " is out of range: the model has " +
                       std::to_string(L) + " layers (0.." + std::to_string(L - 1) + ", or -1.." +
                       std::to_string(-L) + " from the end)");
    torch::Tensor joint;  // the BERT reference's rollout helper: (cam + I), rows normalised, deeper on the left
    for (std::int64_t l = s; l < L; ++l) {
      const auto cam = (t.attention_grad[l] * t.attention_relevance[l]).clamp_min(0).mean(0);
      auto m = cam + torch::eye(cam.size(0), cam.options());
      m = m / m.sum(-1, true);
      joint = joint.defined() ? torch::matmul(m, joint) : m;
    }
    row = joint[0].clone();
    row[0] = row.min();
  }
  const torch::Tensor r = row.to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
}

}  // namespace chefer_lrp

namespace {

class CheferLrp : public ModelExplanationMethod {
 public:
  explicit CheferLrp(const MethodSettings& s)
      : variant_(chefer_lrp::parse_variant(s.chefer_lrp_variant)),
        start_(s.start_layer),
        text_start_(s.text_start_layer) {
    if (s.start_layer < 0) throw InputError("--start-layer must be >= 0");
  }
  std::string name() const override { return "chefer-lrp"; }
  bool applies_to(const ImageModelConfig& c) const override { return chefer_lrp::one_cls_head(c); }
  void check(const ImageModelConfig& c) const override {
    ModelExplanationMethod::check(c);
    chefer_lrp::check_fits(c);
    if (variant_ != chefer_lrp::Variant::Full && variant_ != chefer_lrp::Variant::LastLayer && start_ >= c.depth)
      throw InputError("--start-layer " + std::to_string(start_) + " is out of range: the model has " +
                       std::to_string(c.depth) + " blocks (0.." + std::to_string(c.depth - 1) + ")");
  }
  Array explain_image(const ImageClassifier& model, const torch::Tensor& image, std::int64_t target) const override {
    const auto t = chefer_lrp::trace(model, image, target, variant_ == chefer_lrp::Variant::Full);
    return chefer_lrp::patch_map(t, variant_, start_, model.config());
  }
  bool explains_text() const override { return true; }
  std::vector<double> explain_text(const TextClassifier& model, const TextBatch& text,
                                   std::int64_t target) const override {
    return chefer_lrp::token_scores(chefer_lrp::trace_text(model, text, target), variant_, text_start_);
  }
  // One forward, one backward (2), and the relevance pass: its closed forms cost about what a backward does (2).
  double passes(const ImageModelConfig&) const override { return 5.0; }

 private:
  chefer_lrp::Variant variant_;
  int start_, text_start_;
};

}  // namespace

std::unique_ptr<ModelExplanationMethod> make_chefer_lrp(const MethodSettings& s) {
  return std::make_unique<CheferLrp>(s);
}

}  // namespace attnlens
