// The in-process cost of `attnlens attention flow INPUT.npy`: the same stack read once, then attention_flow (CLS
// scope, the CLI's defaults) timed alone, median of --runs runs, in milliseconds on stdout. bench/startup.py sets
// it against the whole command, process start to file written.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/stack_methods.hpp"
#include "io/npy.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: flow_solver_time INPUT.npy [RUNS]\n");
    return 2;
  }
  const int runs = argc > 2 ? std::atoi(argv[2]) : 10;
  const attnlens::Array stack = attnlens::read_npy(argv[1]);
  const attnlens::AttentionView view = attnlens::AttentionView::of(stack);
  std::vector<double> ms;
  double checksum = 0.0;
  for (int r = 0; r < std::max(1, runs); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const attnlens::LabeledArray flow = attnlens::attention_flow(view, attnlens::FlowSettings{});
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    checksum += flow.array.data[0];
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  std::printf("%.3f\n", ms[ms.size() / 2]);
  std::fprintf(stderr, "checksum %g\n", checksum);
  return 0;
}
