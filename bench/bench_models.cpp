// Cost of explanations relative to the model pass they need, on one model, in one run:
//   forward            logits only (what `predict` does)
//   capture            forward keeping every layer's attention (no explanation) -> ratio to forward
//   rollout            forward with attention capture + rollout per image      -> ratio to forward
//   forward+backward   forward with capture + backward of the target logits (attention gradients retained)
//   grad-rollout       forward+backward + gradient rollout per image            -> ratio to forward+backward
//   chefer             forward+backward + Chefer relevance per image            -> ratio to forward+backward
//   forward-occlusion  one batch of patches + 1 images (197 for DeiT-tiny), logits only
//   blankout           blank-out of one image (spec 8.1): builds those images and runs them -> ratio to the above
//   blankout-chunks16  the same in forward passes of 16 images                                  -> ratio to the above
//   forward-1, forward+backward-1   one image's forward, and its forward + backward (the passes the methods below
//                      are made of)
//   forward+backward+gamma-1   that forward + backward plus the two products zennit's Gamma adds per hooked layer
//                      (patch conv, fc1 and fc2 of every block, head: L(|x|; |w|) and Lᵀ(u; |w|) at their shapes; the
//                      MLP width taken as 4x, the benchmarked models'): the passes attnlrp and cp-lrp need
//   forward+backward+relevance-1   that forward + backward plus the products of Chefer's relevance pass (spec 15.4:
//                      per block four for each Linear's α1β0, three for each attention product's z-rule): what
//                      chefer-lrp needs
//   agcam, attnlrp, cp-lrp, chefer-lrp, bi-attn, bi-attn-token, atman   the methods that run the model again, per
//                      image -> ratio to the passes each needs: one forward+backward (agcam), the two above
//                      (attnlrp, cp-lrp with their default Gammas; chefer-lrp), 1 + steps
//                      forward+backward (Beyond Intuition, its path in batches of 16), 1 + patches forwards (AtMan,
//                      in batches of 16)
// Usage: bench_models MODEL_DIR [--batch B] [google benchmark flags]; MODEL_DIR holds any image family.
// bench/run_model_bench.py creates a DeiT-tiny shaped model, bench/run_dinov2_bench.py a DINOv2-S/14 one; each runs
// this and times the same model in PyTorch eager for the predict comparison.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/gradient_methods.hpp"
#include "core/rollout.hpp"
#include "eval/perturbation.hpp"
#include "models/arrays.hpp"
#include "explain/model_method.hpp"
#include "models/image_classifier.hpp"

namespace {

using attnlens::Array;
using attnlens::AttentionView;

std::string g_model;
int g_batch = 8;
int g_patches = 0;

enum class Kind {
  Forward, Capture, Rollout, ForwardBackward, GradRollout, Chefer, ForwardOcclusion, BlankOut, BlankOut16,
  ForwardOne, ForwardBackwardOne, ForwardBackwardGammaOne, ForwardBackwardRelevanceOne, ModelMethod
};

// The products Gamma's backward adds to a plain backward, per hooked layer (models/forward_rules.cpp): the magnitude
// L(|x|; |w|) and the second transposed product Lᵀ(u⁺ − u⁻; |w|), on random operands of the layers' shapes.
struct GammaProducts {
  torch::Tensor image, conv_w, conv_u, tokens, fc1_w, hidden, fc2_w, head_x, head_w, head_u;
  int depth = 0, patch = 0;
  explicit GammaProducts(const attnlens::ImageModelConfig& c) : depth(c.depth), patch(c.patch_size) {
    const int64_t d = c.embed_dim, n = c.tokens(), h = 4 * d;
    image = torch::rand({1, c.in_chans, c.image_height, c.image_width});
    conv_w = torch::rand({d, c.in_chans, c.patch_size, c.patch_size});
    conv_u = torch::randn({1, d, c.grid_h(), c.grid_w()});
    tokens = torch::rand({1, n, d});
    fc1_w = torch::rand({h, d});
    hidden = torch::rand({1, n, h});
    fc2_w = torch::rand({d, h});
    head_x = torch::rand({1, d});
    head_w = torch::rand({std::max(c.num_classes, 1), d});
    head_u = torch::randn({1, std::max(c.num_classes, 1)});
  }
  void run() const {
    benchmark::DoNotOptimize(torch::conv2d(image, conv_w, {}, patch));
    benchmark::DoNotOptimize(torch::conv_transpose2d(conv_u, conv_w, {}, patch));
    for (int b = 0; b < depth; ++b) {
      benchmark::DoNotOptimize(torch::linear(tokens, fc1_w));  // fc1: L(|x|; |w|), then Lᵀ(u; |w|)
      benchmark::DoNotOptimize(hidden.matmul(fc1_w));
      benchmark::DoNotOptimize(torch::linear(hidden, fc2_w));  // fc2
      benchmark::DoNotOptimize(tokens.matmul(fc2_w));
    }
    benchmark::DoNotOptimize(torch::linear(head_x, head_w));
    benchmark::DoNotOptimize(head_u.matmul(head_w));
  }
};

// The products of chefer-lrp's relevance pass (explain/chefer_lrp.cpp) at the model's shapes, on random operands:
// per Linear two forward products (x⁺ w⁺, x⁻ w⁻) and two transposed ones, per attention product its own and the
// two that hand the relevance to its factors.
struct RelevanceProducts {
  struct Layer {
    torch::Tensor x, w, s;
  };
  std::vector<Layer> linears;  // one block's qkv, proj, fc1, fc2
  torch::Tensor attn, v, s_out, q, kt, s_attn;
  int depth = 0;
  explicit RelevanceProducts(const attnlens::ImageModelConfig& c) : depth(c.depth) {
    const int64_t d = c.embed_dim, n = c.tokens(), h = c.num_heads, hd = d / h;
    for (const auto& [in, out] : {std::pair<int64_t, int64_t>{d, 3 * d}, {d, d}, {d, 4 * d}, {4 * d, d}})
      linears.push_back({torch::rand({1, n, in}), torch::rand({out, in}), torch::rand({1, n, out})});
    attn = torch::rand({1, h, n, n});
    v = torch::rand({1, h, n, hd});
    s_out = torch::rand({1, h, n, hd});
    q = torch::rand({1, h, n, hd});
    kt = torch::rand({1, h, hd, n});
    s_attn = torch::rand({1, h, n, n});
  }
  void run() const {
    for (int b = 0; b < depth; ++b) {
      for (const auto& l : linears)
        for (int part = 0; part < 2; ++part) {
          benchmark::DoNotOptimize(torch::linear(l.x, l.w));
          benchmark::DoNotOptimize(l.s.matmul(l.w));
        }
      benchmark::DoNotOptimize(attn.matmul(v));  // A·V, then its relevance to A and to V
      benchmark::DoNotOptimize(s_out.matmul(v.transpose(-2, -1)));
      benchmark::DoNotOptimize(attn.transpose(-2, -1).matmul(s_out));
      benchmark::DoNotOptimize(q.matmul(kt));  // q kᵀ, then to q and to kᵀ
      benchmark::DoNotOptimize(s_attn.matmul(kt.transpose(-2, -1)));
      benchmark::DoNotOptimize(q.transpose(-2, -1).matmul(s_attn));
    }
  }
};

// One image's explanation by a method that runs the model itself, or one image's forward (+ backward).
void run_one(benchmark::State& state, Kind kind, const std::string& method) {
  const auto model = attnlens::load_image_classifier(g_model);
  const auto& c = model->config();
  torch::manual_seed(0);
  const auto image = torch::randn({3, c.image_height, c.image_width});
  const auto method_ptr = kind == Kind::ModelMethod ? attnlens::make_model_method(method, {}) : nullptr;
  const GammaProducts gamma(c);
  const RelevanceProducts relevance(c);
  for (auto _ : state) {
    if (kind == Kind::ForwardBackwardGammaOne || kind == Kind::ForwardBackwardRelevanceOne) {
      benchmark::DoNotOptimize(model->capture(image.unsqueeze(0), {-1}).input_grad);
      if (kind == Kind::ForwardBackwardGammaOne)
        gamma.run();
      else
        relevance.run();
    } else if (kind == Kind::ForwardOne)
      benchmark::DoNotOptimize(model->forward(image.unsqueeze(0)));
    else if (kind == Kind::ForwardBackwardOne)
      benchmark::DoNotOptimize(model->capture(image.unsqueeze(0), {-1}).input_grad);
    else
      benchmark::DoNotOptimize(method_ptr->explain_image(*model, image, 0).data.data());
  }
}

void run(benchmark::State& state, Kind kind) {
  const auto model = attnlens::load_image_classifier(g_model);
  const auto& c = model->config();
  torch::manual_seed(0);
  const auto images = torch::randn({g_batch, 3, c.image_height, c.image_width});
  const std::vector<int64_t> predicted(static_cast<size_t>(g_batch), -1);
  if (kind == Kind::ForwardOcclusion || kind == Kind::BlankOut || kind == Kind::BlankOut16) {
    // Blank-out against the same number of images in one forward batch, built beforehand (not timed).
    const int64_t count = c.grid_h() * c.grid_w() + 1;
    const auto batch = images[0].unsqueeze(0).repeat({count, 1, 1, 1});
    for (auto _ : state) {
      if (kind == Kind::ForwardOcclusion)
        benchmark::DoNotOptimize(model->forward(batch));
      else  // as one batch, like the baseline, or in chunks of 16 (evaluate's --batch)
        benchmark::DoNotOptimize(
            attnlens::blank_out(*model, images[0], 0, {}, kind == Kind::BlankOut ? static_cast<int>(count) : 16)
                .data.data());
    }
    state.counters["images_per_s"] = benchmark::Counter(static_cast<double>(count) * state.iterations(),
                                                        benchmark::Counter::kIsRate);
    return;
  }
  for (auto _ : state) {
    if (kind == Kind::Forward) {
      benchmark::DoNotOptimize(model->forward(images));
      continue;
    }
    const bool grads = kind != Kind::Rollout && kind != Kind::Capture;
    const auto cap = model->capture(images, grads ? predicted : std::vector<int64_t>{});
    if (kind == Kind::Capture) continue;  // the pass that keeps every layer's attention, no explanation
    for (int64_t b = 0; b < g_batch && kind != Kind::ForwardBackward; ++b) {
      if (kind == Kind::Rollout) {  // as `explain --method rollout` runs it: the head mean converted, then rolled out
        const Array mean = attnlens::image_layers_head_mean(cap.attention, b);
        benchmark::DoNotOptimize(attnlens::rollout_row(AttentionView::of(mean), {}, 0).data.data());
      } else {
        const Array att = attnlens::image_layers(cap.attention, b);
        const Array grad = attnlens::image_layers(cap.attention_grad, b);
        if (kind == Kind::GradRollout)
          benchmark::DoNotOptimize(
              attnlens::grad_rollout_row(AttentionView::of(att), AttentionView::of(grad), {}, 0).data.data());
        else
          benchmark::DoNotOptimize(
              attnlens::chefer_relevance_row(AttentionView::of(att), AttentionView::of(grad), 0).data.data());
      }
    }
  }
  state.counters["images_per_s"] = benchmark::Counter(static_cast<double>(g_batch) * state.iterations(),
                                                      benchmark::Counter::kIsRate);
}

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) millis_[r.run_name.function_name] = r.GetAdjustedRealTime();
    ConsoleReporter::ReportRuns(runs);
  }
  void PrintRatios() const {
    auto ratio = [&](const char* a, const char* b) {
      const auto x = millis_.find(a), y = millis_.find(b);
      if (x == millis_.end() || y == millis_.end()) return;
      std::printf("%-34s %8.2f ms / %8.2f ms = %.3fx\n", (std::string(a) + " / " + b).c_str(), x->second, y->second,
                  x->second / y->second);
    };
    std::printf("\nbatch %d, per batch:\n", g_batch);
    ratio("capture", "forward");
    ratio("rollout", "forward");
    ratio("grad-rollout", "forward+backward");
    ratio("chefer", "forward+backward");
    ratio("blankout", "forward-occlusion");
    ratio("blankout-chunks16", "forward-occlusion");
    const auto f1 = millis_.find("forward-1"), fb1 = millis_.find("forward+backward-1");
    const auto fbg1 = millis_.find("forward+backward+gamma-1"), fbr1 = millis_.find("forward+backward+relevance-1");
    if (f1 != millis_.end() && fb1 != millis_.end() && fbg1 != millis_.end() && fbr1 != millis_.end()) {
      std::printf("\none image: forward %.2f ms, forward+backward %.2f ms, with Gamma's products %.2f ms, with the "
                  "relevance pass's products %.2f ms; each method / the passes it needs (and / forward+backward):\n",
                  f1->second, fb1->second, fbg1->second, fbr1->second);
      const std::pair<const char*, double> needs[] = {
          {"agcam", fb1->second},         {"attnlrp", fbg1->second},       {"cp-lrp", fbg1->second},
          {"chefer-lrp", fbr1->second},   {"bi-attn", 21 * fb1->second},   {"bi-attn-token", 21 * fb1->second},
          {"atman", (1 + g_patches) * f1->second}};
      for (const auto& [name, passes] : needs) {
        const auto m = millis_.find(name);
        if (m != millis_.end())
          std::printf("%-34s %8.2f ms / %8.2f ms = %.3fx (%.3fx)\n", name, m->second, passes, m->second / passes,
                      m->second / fb1->second);
      }
    }
    const auto f = millis_.find("forward");
    if (f != millis_.end()) std::printf("forward_ms_per_image %.4f\n", f->second / g_batch);
  }

 private:
  std::map<std::string, double> millis_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_models MODEL_DIR [--batch B] [benchmark flags]\n");
    return 2;
  }
  g_model = argv[1];
  for (int i = 2; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--batch") g_batch = std::atoi(argv[i + 1]);
  torch::set_num_threads(1);  // one core, like the PyTorch baseline, so ratios do not depend on the machine's load
  const std::pair<const char*, Kind> cases[] = {{"forward", Kind::Forward},
                                                {"capture", Kind::Capture},
                                                {"rollout", Kind::Rollout},
                                                {"forward+backward", Kind::ForwardBackward},
                                                {"grad-rollout", Kind::GradRollout},
                                                {"chefer", Kind::Chefer},
                                                {"forward-occlusion", Kind::ForwardOcclusion},
                                                {"blankout", Kind::BlankOut},
                                                {"blankout-chunks16", Kind::BlankOut16}};
  for (const auto& [name, kind] : cases)
    benchmark::RegisterBenchmark(name, run, kind)->Unit(benchmark::kMillisecond)->MinTime(2.0);
  {
    const auto model = attnlens::load_image_classifier(g_model);
    g_patches = model->config().grid_h() * model->config().grid_w();
  }
  benchmark::RegisterBenchmark("forward-1", run_one, Kind::ForwardOne, "")->Unit(benchmark::kMillisecond)->MinTime(2.0);
  benchmark::RegisterBenchmark("forward+backward-1", run_one, Kind::ForwardBackwardOne, "")
      ->Unit(benchmark::kMillisecond)
      ->MinTime(2.0);
  benchmark::RegisterBenchmark("forward+backward+gamma-1", run_one, Kind::ForwardBackwardGammaOne, "")
      ->Unit(benchmark::kMillisecond)
      ->MinTime(2.0);
  benchmark::RegisterBenchmark("forward+backward+relevance-1", run_one, Kind::ForwardBackwardRelevanceOne, "")
      ->Unit(benchmark::kMillisecond)
      ->MinTime(2.0);
  for (const auto& name : attnlens::model_method_names())
    benchmark::RegisterBenchmark(name.c_str(), run_one, Kind::ModelMethod, name)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(2.0);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
