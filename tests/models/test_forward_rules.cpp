// The modified-gradient rules (models/forward_rules.hpp) against the spec's worked examples and invariants
// (ALGORITHMS.md 14.7, 14.9, 17.5, 18.8), on hand-built tensors, a bias-free random encoder and the bundled model.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "explain/model_method.hpp"
#include "models/forward_rules.hpp"
#include "models/vision_backbone.hpp"

namespace attnlens {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor leaf(std::vector<double> values) {
  return torch::tensor(values, kDouble).unsqueeze(0).requires_grad_(true);
}

void expect_values(const torch::Tensor& got, std::vector<double> want, double tol) {
  const auto flat = got.detach().to(torch::kFloat64).flatten();
  ASSERT_EQ(flat.numel(), static_cast<std::int64_t>(want.size()));
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(flat[static_cast<std::int64_t>(i)].item<double>(), want[i], tol) << "element " << i;
}

// zennit's generalised Gamma, one output (spec 14.7): x = (2, 1), W = [1, -0.5], b = 0.5, z = 2, R = z. LXT's patched
// gradient is R_x / x.
TEST(ForwardRules, GammaLinearWorkedExample) {
  const auto w = torch::tensor({{1.0, -0.5}}, kDouble), b = torch::tensor({0.5}, kDouble);
  const struct {
    double gamma;
    std::vector<double> relevance;
  } cases[] = {{0.0, {2.0, -0.5}}, {0.25, {1.9048, -0.3810}}, {100.0, {1.6032, -0.0040}}};
  for (const auto& c : cases) {
    auto x = leaf({2.0, 1.0});
    const auto z = gamma_linear(x, w, b, c.gamma);
    EXPECT_NEAR(z.item<double>(), 2.0, 1e-15);  // the forward is the plain layer
    z.sum().backward();
    expect_values(x * x.grad(), c.relevance, 1e-4);
  }
}

// Gamma(0) is the plain z-rule, i.e. the ordinary gradient up to the 1e-6 stabiliser (spec 14.9 test 4), for the
// linear layer and the patch convolution.
TEST(ForwardRules, GammaZeroIsTheOrdinaryGradient) {
  torch::manual_seed(3);
  const auto w = torch::randn({5, 7}, kDouble), b = torch::randn({5}, kDouble);
  auto x = torch::randn({3, 7}, kDouble).requires_grad_(true);
  auto x0 = x.detach().clone().requires_grad_(true);
  const auto seed = torch::randn({3, 5}, kDouble);
  (gamma_linear(x, w, b, 0.0) * seed).sum().backward();
  (torch::linear(x0, w, b) * seed).sum().backward();
  EXPECT_LT((x.grad() - x0.grad()).abs().max().item<double>(), 1e-4 * x0.grad().abs().max().item<double>());

  const auto cw = torch::randn({4, 3, 2, 2}, kDouble), cb = torch::randn({4}, kDouble);
  auto img = torch::randn({1, 3, 6, 6}, kDouble).requires_grad_(true);
  auto img0 = img.detach().clone().requires_grad_(true);
  const auto cseed = torch::randn({1, 4, 3, 3}, kDouble);
  (gamma_conv2d(img, cw, cb, 0.0, 2) * cseed).sum().backward();
  (torch::conv2d(img0, cw, cb, 2) * cseed).sum().backward();
  EXPECT_LT((img.grad() - img0.grad()).abs().max().item<double>(), 1e-4 * img0.grad().abs().max().item<double>());
  // A layer without a bias (CLIP's patch embedding) is the same rule with a zero bias.
  auto nb = img.detach().clone().requires_grad_(true), zb = img.detach().clone().requires_grad_(true);
  (gamma_conv2d(nb, cw, {}, 0.25, 2) * cseed).sum().backward();
  (gamma_conv2d(zb, cw, torch::zeros({4}, kDouble), 0.25, 2) * cseed).sum().backward();
  EXPECT_LT((nb.grad() - zb.grad()).abs().max().item<double>(), 1e-15);
}

// zennit's Gamma written out as spec 14.3 states it: four modified forward products for the denominators and four
// transposed products for R_x (the library folds them into one and two). `layer` is the plain map without bias,
// `transposed` its vector-Jacobian product.
template <class Layer, class Transposed, class Bias>
torch::Tensor zennit_gamma_gradient(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                                    const torch::Tensor& g, double gamma, Layer layer, Transposed transposed,
                                    Bias with_bias) {
  const auto wp = w + gamma * w.clamp_min(0), wn = w + gamma * w.clamp_max(0);
  const auto bp = b + gamma * b.clamp_min(0), bn = b + gamma * b.clamp_max(0);
  const auto xp = x.clamp_min(0), xn = x.clamp_max(0);
  const auto stab = [](const torch::Tensor& t, double e) { return t + e * (2 * (t >= 0).to(t.dtype()) - 1); };
  const auto z = with_bias(layer(x, w), b);
  const auto r = g * z;
  const auto up = r * (z > 0).to(z.dtype()) / stab(with_bias(layer(xp, wp), bp) + layer(xn, wn), 1e-6);
  const auto un = r * (z < 0).to(z.dtype()) / stab(with_bias(layer(xp, wn), bn) + layer(xn, wp), 1e-6);
  const auto rx = xp * transposed(up, wp) + xn * transposed(up, wn) + xp * transposed(un, wn) +
                  xn * transposed(un, wp);
  return rx / stab(x, 1e-10);
}

// The library's Gamma (one forward product and two transposed ones in its backward) equals zennit's four and four,
// for linear layers and the patch convolution, small and large gamma, in float64.
TEST(ForwardRules, GammaEqualsZennitsFourProducts) {
  torch::manual_seed(11);
  for (const double gamma : {0.05, 0.25, 3.0, 100.0}) {
    const auto w = torch::randn({6, 9}, kDouble), b = torch::randn({6}, kDouble) * 0.3;
    auto x = torch::randn({4, 9}, kDouble).requires_grad_(true);
    const auto g = torch::randn({4, 6}, kDouble);
    (gamma_linear(x, w, b, gamma) * g).sum().backward();
    const auto want = zennit_gamma_gradient(
        x.detach(), w, b, g, gamma, [](const torch::Tensor& in, const torch::Tensor& wt) { return torch::linear(in, wt); },
        [](const torch::Tensor& u, const torch::Tensor& wt) { return u.matmul(wt); },
        [](const torch::Tensor& t, const torch::Tensor& bias) { return t + bias; });
    EXPECT_LT((x.grad() - want).abs().max().item<double>(), 1e-9 * (1 + want.abs().max().item<double>()))
        << "linear, gamma " << gamma;

    const auto cw = torch::randn({5, 3, 2, 2}, kDouble), cb = torch::randn({5}, kDouble) * 0.3;
    auto img = torch::randn({2, 3, 6, 6}, kDouble).requires_grad_(true);
    const auto cg = torch::randn({2, 5, 3, 3}, kDouble);
    (gamma_conv2d(img, cw, cb, gamma, 2) * cg).sum().backward();
    const auto cwant = zennit_gamma_gradient(
        img.detach(), cw, cb, cg, gamma,
        [](const torch::Tensor& in, const torch::Tensor& wt) { return torch::conv2d(in, wt, {}, 2); },
        [](const torch::Tensor& u, const torch::Tensor& wt) { return torch::conv_transpose2d(u, wt, {}, 2); },
        [](const torch::Tensor& t, const torch::Tensor& bias) { return t + bias.view({1, -1, 1, 1}); });
    EXPECT_LT((img.grad() - cwant).abs().max().item<double>(), 1e-9 * (1 + cwant.abs().max().item<double>()))
        << "conv, gamma " << gamma;
  }
  // As a ViT's layers meet it: float32 tokens [B, N, D] (the fused loops' other type), here a transposed, non-
  // contiguous view, with exact zeros in x (where R_x / stab(x) must stay 0) and in z (no share). Against zennit's
  // form in float64 on the same values.
  const auto w = torch::randn({7, 5}), b = torch::randn({7}) * 0.3;
  auto base = torch::randn({2, 5, 3});
  base.index_put_({0, 1, 2}, 0.0f);
  auto x = base.transpose(1, 2).requires_grad_(true);  // [2, 3, 5], not contiguous
  ASSERT_FALSE(x.is_contiguous());
  auto g = torch::randn({2, 3, 7});
  (gamma_linear(x, w, b, 0.25) * g).sum().backward();
  const auto want = zennit_gamma_gradient(
      x.detach().to(kDouble), w.to(kDouble), b.to(kDouble), g.to(kDouble), 0.25,
      [](const torch::Tensor& in, const torch::Tensor& wt) { return torch::linear(in, wt); },
      [](const torch::Tensor& u, const torch::Tensor& wt) { return u.matmul(wt); },
      [](const torch::Tensor& t, const torch::Tensor& bias) { return t + bias; });
  EXPECT_LT((x.grad().to(kDouble) - want).abs().max().item<double>(), 1e-5 * (1 + want.abs().max().item<double>()));
  EXPECT_EQ(x.grad()[0][2][1].item<float>(), 0.0f);  // x = 0 there
  // z = 0 exactly (bias cancelling a zero input row): that output hands on nothing, whatever its gradient.
  auto zero_in = torch::zeros({1, 5}).requires_grad_(true);
  const auto zb = torch::zeros({7});
  (gamma_linear(zero_in, w, zb, 0.25) * torch::randn({1, 7})).sum().backward();
  EXPECT_EQ(zero_in.grad().abs().max().item<float>(), 0.0f);
}

// The ε-rule (spec 14.10.1) on one output, x = (2, 1), W = [1, -0.5]: R_x = x ⊙ W (R_z / (z + ε sign z)) with R_z = z.
// b = 0.5: z = 2, ε = 0.5 -> ratio 0.8, R_x = (1.6, -0.4); b = -3: z = -1.5, z - ε = -2 -> ratio 0.75,
// R_x = (1.5, -0.375). ε = 0 and the plain model are the ordinary gradient, R_x = (2, -0.5).
TEST(ForwardRules, EpsilonRuleWorkedExample) {
  const auto w = torch::tensor({{1.0, -0.5}}, kDouble);
  const auto relevance = [&](LrpRules lrp, double epsilon, double bias) {
    ForwardRules rules;
    rules.lrp = lrp;
    rules.epsilon = epsilon;
    auto x = leaf({2.0, 1.0});
    rules.linear(x, w, torch::tensor({bias}, kDouble), LinearSite::FeedForward).sum().backward();
    return (x * x.grad()).detach();
  };
  expect_values(relevance(LrpRules::Cp, 0.5, 0.5), {1.6, -0.4}, 1e-12);
  expect_values(relevance(LrpRules::AttnLrp, 0.5, -3.0), {1.5, -0.375}, 1e-12);
  expect_values(relevance(LrpRules::Cp, 0.0, 0.5), {2.0, -0.5}, 1e-12);
  expect_values(relevance(LrpRules::None, 0.5, 0.5), {2.0, -0.5}, 1e-12);  // no LRP, no rule

  // The patch convolution takes the same rule: one 2x2 patch, one output channel.
  ForwardRules rules;
  rules.lrp = LrpRules::Cp;
  rules.epsilon = 1.0;
  auto img = torch::tensor({1.0, 2.0, 0.5, -1.0}, kDouble).view({1, 1, 2, 2}).requires_grad_(true);
  const auto cw = torch::tensor({1.0, 1.0, 2.0, 1.0}, kDouble).view({1, 1, 2, 2});
  rules.patch_conv(img, cw, torch::tensor({0.0}, kDouble), 2).sum().backward();  // z = 1 + 2 + 1 - 1 = 3
  expect_values(img * img.grad(), {0.75, 1.5, 0.75, -0.75}, 1e-12);                  // x ⊙ w ⊙ 3 / 4
}

// The identity rule on a bias-free two-layer GELU MLP conserves relevance (spec 14.7): R_x = (1.3530, 0.8142),
// sum = y = 2.167165, where plain gradient x input gives (2.4085, 0.3522).
TEST(ForwardRules, IdentityRuleWorkedExample) {
  ForwardRules rules;
  rules.lrp = LrpRules::Cp;
  const auto w1 = torch::tensor({{1.0, 0.5}, {-1.0, 1.0}}, kDouble), w2 = torch::tensor({{1.0, 2.0}}, kDouble);
  auto x = leaf({2.0, 1.0});
  const auto y = torch::linear(rules.activation(torch::linear(x, w1), Activation::Gelu), w2);
  EXPECT_NEAR(y.item<double>(), 2.167165, 1e-6);
  y.sum().backward();
  expect_values(x * x.grad(), {1.3530, 0.8142}, 1e-4);
  EXPECT_NEAR((x * x.grad()).sum().item<double>(), y.item<double>(), 1e-9);

  auto x0 = leaf({2.0, 1.0});  // the plain rules: ordinary gradient x input
  torch::linear(ForwardRules{}.activation(torch::linear(x0, w1), Activation::Gelu), w2).sum().backward();
  expect_values(x0 * x0.grad(), {2.4085, 0.3522}, 1e-4);
}

// LayerNorm with σ detached, no affine part, eps 1e-6 (spec 14.7): explaining y0 = -0.92582 of x = (1, 2, 6) gives
// R_x = (0.3086, -0.3086, -0.9258).
TEST(ForwardRules, LayerNormWorkedExample) {
  ForwardRules rules;
  rules.lrp = LrpRules::AttnLrp;
  auto x = leaf({1.0, 2.0, 6.0});
  const auto y = rules.layer_norm(x, {}, {}, 1e-6);
  EXPECT_NEAR(y[0][0].item<double>(), -0.92582, 1e-5);
  y[0][0].backward();
  expect_values(x * x.grad(), {0.3086, -0.3086, -0.9258}, 1e-4);
}

// A random pre-norm encoder, float64; with `biases` false every bias is zero and the LayerNorms have none.
PreNormEncoder random_encoder(bool biases, FeedForward ff = FeedForward::Gelu) {
  torch::manual_seed(11);
  const std::int64_t D = 8, F = 16;
  PreNormEncoder e;
  e.num_heads = 2;
  e.feed_forward = ff;
  const auto bias = [&](std::int64_t n) { return biases ? torch::randn({n}, kDouble) * 0.1 : torch::Tensor(); };
  for (int l = 0; l < 2; ++l) {
    PreNormBlock k;
    k.norm1_w = 1.0 + 0.1 * torch::randn({D}, kDouble);
    k.norm1_b = bias(D);
    k.qkv_w = torch::randn({3 * D, D}, kDouble) * 0.5;
    k.qkv_b = bias(3 * D);
    k.proj_w = torch::randn({D, D}, kDouble) * 0.3;
    k.proj_b = bias(D);
    k.norm2_w = 1.0 + 0.1 * torch::randn({D}, kDouble);
    k.norm2_b = bias(D);
    k.fc1_w = torch::randn({ff == FeedForward::SwiGlu ? 2 * F : F, D}, kDouble) * 0.3;
    k.fc1_b = bias(ff == FeedForward::SwiGlu ? 2 * F : F);
    k.fc2_w = torch::randn({D, F}, kDouble) * 0.3;
    k.fc2_b = bias(D);
    e.blocks.push_back(k);
  }
  return e;
}

// CP-LRP is conservative on a bias-free model (spec 14.9 test 1): sum of input x modified gradient = the output.
TEST(ForwardRules, CpLrpConservesRelevanceOnABiasFreeEncoder) {
  for (const FeedForward ff : {FeedForward::Gelu, FeedForward::SwiGlu}) {
    const PreNormEncoder e = random_encoder(false, ff);
    ForwardRules rules;
    rules.lrp = LrpRules::Cp;
    torch::manual_seed(5);
    auto x = torch::randn({1, 5, 8}, kDouble).requires_grad_(true);
    const auto readout = torch::randn({8}, kDouble);
    const auto y = (e.run(x, {}, nullptr, rules)[0][0] * readout).sum();
    y.backward();
    EXPECT_NEAR((x * x.grad()).sum().item<double>(), y.item<double>(), 1e-9 * std::abs(y.item<double>()));
    // AttnLRP's softmax rule is not conservative, and plain gradient x input is not either.
    rules.lrp = LrpRules::AttnLrp;
    auto xa = x.detach().clone().requires_grad_(true);
    (e.run(xa, {}, nullptr, rules)[0][0] * readout).sum().backward();
    EXPECT_GT(std::abs((xa * xa.grad()).sum().item<double>() - y.item<double>()), 1e-3);
  }
}

// The rules change the backward only: the forward values agree to LayerNorm's recomputation (spec 14.9 test 6),
// and AtMan's factors all 1 leave the attention unchanged (softmax is shift-invariant; spec 18.8 test 1).
TEST(ForwardRules, ForwardValuesUnchanged) {
  const PreNormEncoder e = random_encoder(true);
  torch::manual_seed(6);
  const auto x = torch::randn({2, 5, 8}, kDouble);
  const auto plain = e.run(x, {}, nullptr);
  for (const LrpRules kind : {LrpRules::AttnLrp, LrpRules::Cp}) {
    ForwardRules rules;
    rules.lrp = kind;
    rules.gamma_linear = 0.25;
    rules.gamma_attention_projections = true;
    const auto out = e.run(x.clone().requires_grad_(true), {}, nullptr, rules);
    EXPECT_LT((out - plain).abs().max().item<double>(), 1e-12);
  }
  ForwardRules ones;
  ones.key_factors = torch::ones({2, 5}, kDouble);
  EXPECT_LT((e.run(x, {}, nullptr, ones) - plain).abs().max().item<double>(), 1e-12);
}

// AtMan (spec 18.8 test 4): a suppressed key's probability falls in every row where its shifted score is > 0.
TEST(ForwardRules, AtManLowersTheSuppressedKey) {
  const PreNormEncoder e = random_encoder(true);
  torch::manual_seed(8);
  const auto x = torch::randn({1, 5, 8}, kDouble);
  ImageCapture plain, suppressed;
  e.run(x, {}, &plain);
  ForwardRules rules;
  rules.key_factors = torch::ones({1, 5}, kDouble);
  rules.key_factors[0][2] = 0.1;
  rules.record_scores = true;
  e.run(x, {}, &suppressed, rules);
  // Layer 0 sees the same input either way: every row whose shifted score for key 2 is > 0 loses mass there.
  const auto a0 = plain.attention[0][0].select(-1, 2), a1 = suppressed.attention[0][0].select(-1, 2);
  const auto s0 = plain.scores_grad[0][0];  // the plain pass's scores (no gradients were taken)
  const auto shifted = (s0 - s0.amin(-1, true)).select(-1, 2);
  const auto lower = (a1 < a0) | (shifted <= 0);
  EXPECT_TRUE(lower.all().item<bool>());
  EXPECT_GT((shifted > 0).sum().item<std::int64_t>(), 0);
}

// AG-CAM's graph (spec 17.5): in a one-block model detaching the attention input leaves dy/dA as it is; with two
// blocks the first block's gradient changes (it no longer flows through the second block's attention input).
TEST(ForwardRules, DetachedAttentionInputGradients) {
  PreNormEncoder two = random_encoder(true), one = two;
  one.blocks.resize(1);
  torch::manual_seed(9);
  const auto x = torch::randn({1, 5, 8}, kDouble);
  const auto readout = torch::randn({8}, kDouble);
  const auto first_grad = [&](const PreNormEncoder& e, bool detach) {
    ForwardRules rules;
    rules.detach_attention_input = detach;
    ImageCapture cap;
    (e.run(x.clone().requires_grad_(true), {}, &cap, rules)[0][0] * readout).sum().backward();
    return cap.attention[0].grad().clone();
  };
  EXPECT_LT((first_grad(one, true) - first_grad(one, false)).abs().max().item<double>(), 1e-14);
  EXPECT_GT((first_grad(two, true) - first_grad(two, false)).abs().max().item<double>(), 1e-6);
}

TEST(ForwardRules, BadSettingsAreInputErrors) {
  ForwardRules rules;
  rules.gamma_linear = -1.0;
  EXPECT_THROW(rules.check(), InputError);
  rules.gamma_linear = 0.0;
  rules.epsilon = -1e-3;
  EXPECT_THROW(rules.check(), InputError);
  rules.epsilon = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(rules.check(), InputError);
  rules.epsilon = 0.0;
  rules.key_factors = torch::full({1, 3}, 2.0);
  EXPECT_THROW(rules.check(), InputError);

  MethodSettings s;
  s.gamma_conv = -0.5;
  EXPECT_THROW(make_model_method("attnlrp", s), InputError);
  EXPECT_THROW(make_model_method("cp-lrp", s), InputError);
  s = {};
  s.lrp_epsilon = -1.0;
  EXPECT_THROW(make_model_method("attnlrp", s), InputError);
  s = {};
  s.atman_factor = 1.5;
  EXPECT_THROW(make_model_method("atman", s), InputError);
  s = {};
  s.steps = 0;
  EXPECT_THROW(make_model_method("bi-attn", s), InputError);
  s = {};
  s.bi_start_layer = 4;
  ImageModelConfig c;
  c.depth = 4;
  EXPECT_THROW(make_model_method("bi-attn", s)->check(c), InputError);
  s.bi_start_layer = 3;
  EXPECT_NO_THROW(make_model_method("bi-attn-token", s)->check(c));
  c.num_classes = 0;
  EXPECT_THROW(make_model_method("agcam", MethodSettings{})->check(c), InputError);
  EXPECT_THROW(make_model_method("no-such-method", MethodSettings{}), InputError);
}

// On the bundled model: AtMan with factor 1 and no neighbours changes nothing, so every patch scores 0 (spec 18.8).
TEST(ModelMethods, AtManWithFactorOneIsZeroOnTheBundledModel) {
  const auto model = load_image_classifier(std::string(ATTNLENS_SOURCE_DIR) + "/data/models/fmnist-vit");
  torch::manual_seed(1);
  const auto image = torch::randn({3, 56, 56});
  MethodSettings s;
  s.atman_factor = 1.0;
  s.atman_threshold = std::numeric_limits<double>::quiet_NaN();
  const Array zero = make_model_method("atman", s)->explain_image(*model, image, 2);
  ASSERT_EQ(zero.shape, (std::vector<std::int64_t>{8, 8}));
  for (double v : zero.data) EXPECT_NEAR(v, 0.0, 1e-5);  // float32 rounding of the shifted scores: ~4e-7 seen
  // The default factor moves the scores; a batch of 5 gives the numbers of a batch of 16 (spec 18.8 test 3).
  MethodSettings d;
  const Array a = make_model_method("atman", d)->explain_image(*model, image, 2);
  d.batch = 5;
  const Array b = make_model_method("atman", d)->explain_image(*model, image, 2);
  double spread = 0.0;
  for (std::size_t i = 0; i < a.data.size(); ++i) {
    EXPECT_NEAR(a.data[i], b.data[i], 1e-5);
    spread = std::max(spread, std::abs(a.data[i]));
  }
  EXPECT_GT(spread, 1e-4);
}

}  // namespace
}  // namespace attnlens
