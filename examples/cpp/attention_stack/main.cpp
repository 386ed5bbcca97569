// attention_stack: what a program that already has its model's attention in memory (from its own inference engine)
// does with attnlens. It fills a [layers, heads, tokens, tokens] stack, then computes the CLS row of attention
// rollout and the exact attention flow from CLS, and writes them (and the stack itself) as .npy.
//
//   attention_stack [OUT_DIR]     writes OUT_DIR/attention.npy, rollout.npy, flow.npy (default: the current folder)
#include <attnlens/core.hpp>
#include <attnlens/io.hpp>
#include <cmath>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  const std::string out = argc > 1 ? argv[1] : ".";
  // 4 layers, 2 heads, CLS + a 3x3 patch grid. Each row is a softmax, as post-softmax attention is.
  constexpr int L = 4, H = 2, N = 10;
  attnlens::Array attention({L, H, N, N});
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < H; ++h)
      for (int q = 0; q < N; ++q) {
        double* row = attention.data.data() + ((static_cast<std::size_t>(l) * H + h) * N + q) * N;
        double sum = 0.0;
        for (int k = 0; k < N; ++k) sum += row[k] = std::exp(std::sin(1.0 + l + 2.0 * h + 0.7 * q * k));
        for (int k = 0; k < N; ++k) row[k] /= sum;
      }

  try {
    const attnlens::AttentionView view = attnlens::AttentionView::of(attention);
    attnlens::check_attention_stack(view, /*rank4=*/true, /*strict=*/true, "the example stack");

    attnlens::RolloutSettings rollout;  // Abnar & Zuidema: head mean, + I, row-normalised, J_l = A_l J_(l-1)
    rollout.query_row = 0;              // the CLS row
    const attnlens::LabeledArray cls_rollout = attnlens::attention_rollout(view, rollout);

    attnlens::FlowSettings flow;  // exact max-flow from (last layer, CLS) to every input token
    const attnlens::LabeledArray cls_flow = attnlens::attention_flow(view, flow);

    attnlens::write_array(out + "/attention.npy", attention, {"layer", "head", "query", "key"});
    attnlens::write_array(out + "/rollout.npy", cls_rollout.array, cls_rollout.dims);
    attnlens::write_array(out + "/flow.npy", cls_flow.array, cls_flow.dims);
    std::printf("token  rollout  flow\n");
    for (int k = 0; k < N; ++k) std::printf("%5d  %.5f  %.5f\n", k, cls_rollout.array.data[k], cls_flow.array.data[k]);
  } catch (const attnlens::InputError& e) {
    std::fprintf(stderr, "attention_stack: %s\n", e.what());
    return 2;
  }
  return 0;
}
