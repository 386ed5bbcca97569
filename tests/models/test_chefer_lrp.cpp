// chefer-lrp (explain/chefer_lrp.cpp) against the spec: the worked examples of ALGORITHMS.md 15.8 for each rule, the
// rollout of M = A + I, conservation at every block of the bundled model (15.9 test 1), transformer_attribution
// from the last block == last_layer with is_ablation (15.9 test 2), and the families it refuses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "explain/chefer_lrp.hpp"
#include "explain/model_method.hpp"

namespace attnlens {
namespace {

namespace lrp = chefer_lrp;
const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor vec(std::vector<double> v) { return torch::tensor(v, kDouble); }

// |got - want| <= tol * max(1, |want|): the rules' 1e-9 stabilisers shift the hand-computed values by ~1e-9.
void expect_values(const torch::Tensor& got, std::vector<double> want, double tol) {
  const auto flat = got.to(torch::kFloat64).flatten();
  ASSERT_EQ(flat.numel(), static_cast<std::int64_t>(want.size()));
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(flat[static_cast<std::int64_t>(i)].item<double>(), want[i], tol * std::max(1.0, std::abs(want[i])))
        << "element " << i;
}

std::unique_ptr<ImageClassifier> bundled() {
  return load_image_classifier(std::string(ATTNLENS_SOURCE_DIR) + "/data/models/fmnist-vit");
}

torch::Tensor bundled_image() {
  torch::manual_seed(7);
  auto x = -1 + 0.1 * torch::rand({56, 56});
  x.narrow(0, 14, 24).narrow(1, 20, 18).uniform_(0.2, 1.0);  // a bright item on a dark canvas
  return x.unsqueeze(0).expand({3, 56, 56}).contiguous();
}

// 15.8: safe_divide(1, (2, 0, -1e-9, -2)) = (0.5, 0, 1e9, -0.5): +1e-9, not sign-aware, 0 where b = 0.
TEST(CheferLrp, SafeDivide) {
  const auto q = lrp::safe_divide(torch::ones({4}, kDouble), vec({2, 0, -1e-9, -2}));
  expect_values(q, {0.5, 0.0, 1e9, -0.5}, 1e-8);  // 1 / (2 + 1e-9), ...
  EXPECT_EQ(q[1].item<double>(), 0.0);
}

// 15.8: Linear alpha 1 beta 0, x = (1, -2), W = [1, -1], R = 1: Z1 = 1, Z2 = 2, R_in = (1/3, 2/3); the bias is
// not involved.
TEST(CheferLrp, LinearAlphaOneBetaZero) {
  const auto r = lrp::linear_relprop(vec({1.0}).view({1, 1}), vec({1, -2}).view({1, 2}), vec({1, -1}).view({1, 2}));
  expect_values(r, {1.0 / 3, 2.0 / 3}, 1e-8);
}

// 15.8: Add, X0 = (1, 2), X1 = (3, -1), R = (1, 1): z-rule a = (0.25, 2), b = (0.75, -1); rescaled
// a = (0.2, 1.6), b = (-0.6, 0.8) (the negative-sum branch has its signs flipped), total 2.
TEST(CheferLrp, AddRescaling) {
  const auto [a, b] = lrp::add_relprop(vec({1, 1}), vec({1, 2}), vec({3, -1}));
  expect_values(a, {0.2, 1.6}, 1e-8);
  expect_values(b, {-0.6, 0.8}, 1e-8);
}

// 15.8: matmul2, A = [[.5, .5], [1, 0]], V = [[1], [3]], R_O = [[1], [1]]: halved, R_A = [[.125, .375], [.5, 0]]
// (attn_cam) and R_V = [[.625], [.375]]; together they hold sum R_O = 2.
TEST(CheferLrp, AttentionProductZRuleHalved) {
  const auto A = vec({0.5, 0.5, 1, 0}).view({2, 2}), V = vec({1, 3}).view({2, 1});
  const auto [ra, rv] = lrp::matmul_relprop(torch::ones({2, 1}, kDouble), A, V);
  expect_values(ra / 2, {0.125, 0.375, 0.5, 0.0}, 1e-8);
  expect_values(rv / 2, {0.625, 0.375}, 1e-8);
  EXPECT_NEAR((ra.sum() + rv.sum()).item<double>() / 2, 2.0, 1e-8);
}

// Clone: the copies' relevances add, except where x = 0 (safe_divide gives 0 there).
TEST(CheferLrp, CloneMerges) {
  const auto r = lrp::clone_relprop({vec({1, 1, 1}), vec({0.5, 2, -3})}, vec({2, 0, -1}));
  expect_values(r, {1.5, 0.0, -2.0}, 1e-8);
}

// zB on a random patch convolution (float64): every pixel's share (x - l) W+ + (x - h) W- is >= 0, so positive
// relevance stays positive, and the total is conserved up to the 1e-9 stabiliser.
TEST(CheferLrp, PatchConvZbConservesAndStaysPositive) {
  torch::manual_seed(2);
  const auto x = torch::randn({1, 3, 6, 6}, kDouble), w = torch::randn({4, 3, 2, 2}, kDouble);
  const auto R = torch::rand({1, 4, 3, 3}, kDouble);
  const auto r = lrp::patch_conv_relprop(R, x, w, 2);
  ASSERT_EQ(r.sizes(), x.sizes());
  EXPECT_NEAR(r.sum().item<double>(), R.sum().item<double>(), 1e-7);
  EXPECT_GE(r.min().item<double>(), -1e-12);
}

// 15.8 rollout of M = A + I without row normalisation, N = 3 (one prefix token, two patches):
// start 0 -> C[0] = (1.69, 0.40, 0.12), map (0.40, 0.12); start 1 -> (0.2, 0.1). dA = 1, so the per-block cam is
// R_A itself.
TEST(CheferLrp, RolloutOfMPlusIdentity) {
  lrp::Trace t;
  t.attention_relevance = {vec({.2, .1, 0, 0, .3, 0, .1, 0, .2}).view({1, 3, 3}),
                           vec({.4, .2, .1, 0, 0, 0, 0, 0, 0}).view({1, 3, 3})};
  t.attention_grad = {torch::ones({1, 3, 3}, kDouble), torch::ones({1, 3, 3}, kDouble)};
  ImageModelConfig c;
  c.patch_size = 1;
  c.image_height = 1;
  c.image_width = 2;
  for (auto v : {lrp::Variant::TransformerAttribution, lrp::Variant::Rollout}) {
    const Array s0 = lrp::patch_map(t, v, 0, c), s1 = lrp::patch_map(t, v, 1, c);
    ASSERT_EQ(s0.shape, (std::vector<std::int64_t>{1, 2}));
    EXPECT_NEAR(s0.data[0], 0.40, 1e-12);
    EXPECT_NEAR(s0.data[1], 0.12, 1e-12);
    EXPECT_NEAR(s1.data[0], 0.2, 1e-12);
    EXPECT_NEAR(s1.data[1], 0.1, 1e-12);
  }
  EXPECT_THROW(lrp::patch_map(t, lrp::Variant::TransformerAttribution, 2, c), InputError);
}

// On the bundled model (4 blocks, 4 heads, D = 64, float32): the method's own forward gives the model's logits and
// the same attention gradients as capture(); relevance is conserved from the one-hot through the head and at the
// input of every block, and at the position Add (15.9 test 1).
TEST(CheferLrp, BundledModelForwardAndConservation) {
  const auto model = bundled();
  const auto image = bundled_image();
  const std::int64_t target = 3;
  const auto t = lrp::trace(*model, image, target, /*full=*/true);
  const auto logits = model->forward(image.unsqueeze(0));
  EXPECT_LT((t.logits - logits).abs().max().item<double>(), 1e-5 * logits.abs().max().item<double>());
  const ImageCapture cap = model->capture(image.unsqueeze(0), {target});
  ASSERT_EQ(t.attention_grad.size(), cap.attention_grad.size());
  for (std::size_t b = 0; b < t.attention_grad.size(); ++b) {
    const auto want = cap.attention_grad[b][0];
    EXPECT_LT((t.attention_grad[b] - want).abs().max().item<double>(), 1e-5 * want.abs().max().item<double>())
        << "block " << b;
    EXPECT_LT((t.attention[b] - cap.attention[b][0]).abs().max().item<double>(), 1e-6) << "block " << b;
  }
  EXPECT_NEAR(t.head_relevance.sum().item<double>(), 1.0, 1e-4);
  ASSERT_EQ(t.block_relevance.size(), 4u);
  for (std::size_t b = 0; b < t.block_relevance.size(); ++b)
    EXPECT_NEAR(t.block_relevance[b].sum().item<double>(), 1.0, 1e-4) << "input of block " << b;
  EXPECT_NEAR((t.token_relevance.sum() + t.position_relevance.sum()).item<double>(), 1.0, 1e-4);
  // R_A is signed and carries relevance: not a degenerate all-zero pass.
  EXPECT_GT(t.attention_relevance[3].abs().max().item<double>(), 1e-4);
  EXPECT_EQ(t.pixel_relevance.sizes(), (torch::IntArrayRef{56, 56}));
}

// 15.9 test 2: transformer_attribution from the last block is last_layer with is_ablation, exactly; and the method
// object gives the traced maps for each variant.
TEST(CheferLrp, VariantsOnTheBundledModel) {
  const auto model = bundled();
  const auto image = bundled_image();
  const ImageModelConfig& c = model->config();
  const auto t = lrp::trace(*model, image, 1, /*full=*/true);
  const Array last = lrp::patch_map(t, lrp::Variant::TransformerAttribution, c.depth - 1, c);
  const Array ablation = lrp::patch_map(t, lrp::Variant::LastLayer, 0, c, /*ablation=*/true);
  ASSERT_EQ(last.shape, (std::vector<std::int64_t>{8, 8}));
  EXPECT_EQ(last.data, ablation.data);
  double spread = 0.0;
  for (double v : last.data) spread = std::max(spread, std::abs(v));
  EXPECT_GT(spread, 0.0);

  const std::pair<const char*, lrp::Variant> variants[] = {
      {"transformer_attribution", lrp::Variant::TransformerAttribution},
      {"rollout", lrp::Variant::Rollout},
      {"last_layer", lrp::Variant::LastLayer},
      {"full", lrp::Variant::Full}};
  for (const auto& [name, v] : variants) {
    MethodSettings s;
    s.chefer_lrp_variant = name;
    s.start_layer = 1;
    const auto m = make_model_method("chefer-lrp", s);
    m->check(c);
    const Array got = m->explain_image(*model, image, 1), want = lrp::patch_map(t, v, 1, c);
    ASSERT_EQ(got.shape, want.shape) << name;
    for (std::size_t i = 0; i < got.data.size(); ++i)
      EXPECT_NEAR(got.data[i], want.data[i], 1e-6 * (1 + std::abs(want.data[i]))) << name << " patch " << i;
  }
  // The full map is the pixel relevance summed over each 7 x 7 patch.
  const Array full = lrp::patch_map(t, lrp::Variant::Full, 0, c);
  EXPECT_NEAR(full.data[9], t.pixel_relevance.narrow(0, 7, 7).narrow(1, 7, 7).sum().item<double>(), 1e-6);
}

// Families without exactly one CLS head are refused by name (the CLI exits 2), and "all" leaves the method out
// there; bad settings are InputErrors before anything runs.
TEST(CheferLrp, RefusesOtherFamiliesAndBadSettings) {
  const auto m = make_model_method("chefer-lrp", MethodSettings{});
  ImageModelConfig vit;
  vit.family = "vit";
  vit.depth = 4;
  EXPECT_NO_THROW(m->check(vit));
  ImageModelConfig deit3 = vit;
  deit3.family = "deit3";
  EXPECT_NO_THROW(m->check(deit3));
  ImageModelConfig distilled = vit, dinov2 = vit, clip = vit;
  distilled.distilled = true;
  dinov2.family = "dinov2";
  dinov2.register_tokens = 4;
  clip.family = "clip";
  for (const ImageModelConfig* c : {&distilled, &dinov2, &clip}) {
    EXPECT_FALSE(m->applies_to(*c));
    try {
      m->check(*c);
      ADD_FAILURE() << c->family << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("chefer-lrp needs a ViT with one CLS head (timm ViT/DeiT, DeiT III); "
                                           "this is a "),
                std::string::npos)
          << e.what();
    }
    const auto names = image_method_names(*c);
    EXPECT_EQ(std::count(names.begin(), names.end(), "chefer-lrp"), 0);
    EXPECT_EQ(names.size() + 1, image_method_names().size());
  }
  EXPECT_EQ(image_method_names(vit), image_method_names());

  MethodSettings s;
  s.chefer_lrp_variant = "grad";
  EXPECT_THROW(make_model_method("chefer-lrp", s), InputError);
  s = {};
  s.start_layer = 4;
  EXPECT_THROW(make_model_method("chefer-lrp", s)->check(vit), InputError);
  s.start_layer = 3;
  EXPECT_NO_THROW(make_model_method("chefer-lrp", s)->check(vit));
  s.start_layer = -1;
  EXPECT_THROW(make_model_method("chefer-lrp", s), InputError);
  vit.num_classes = 0;
  EXPECT_THROW(m->check(vit), InputError);
}

}  // namespace
}  // namespace attnlens
