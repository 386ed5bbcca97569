// Exact attention flow: attnlens' layered solver against LEMON's Preflow (a general push-relabel max-flow) on the
// same graphs, in the same run. Prints a ratio table at the end; absolute times on shared machines are noisy, the
// ratios much less so.
//
//   ./build/bench_flow                       # all cases
//   ./build/bench_flow --benchmark_filter=cls  # one scope
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/attention_flow.hpp"
#include "core/layered_flow.hpp"
#include "tests/support/lemon_maxflow.hpp"

namespace {

using attnlens::Array;

// Softmax rows of N(0, sigma^2) logits with the half identity, as spec 3.1 builds them. sigma 1 gives diffuse
// attention (like early layers or random weights); sigma 3 gives peaked attention (like trained late layers).
Array capacities(int layers, int tokens, double sigma) {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> logits(0.0, sigma);
  Array c({layers, tokens, tokens});
  for (int l = 0; l < layers; ++l)
    for (int q = 0; q < tokens; ++q) {
      double* row = c.data.data() + (static_cast<size_t>(l) * tokens + q) * tokens;
      double sum = 0.0;
      for (int k = 0; k < tokens; ++k) sum += row[k] = std::exp(logits(rng));
      for (int k = 0; k < tokens; ++k) row[k] = 0.5 * row[k] / sum + (k == q ? 0.5 : 0.0);
    }
  return c;
}

struct Case {
  const char* name;
  int layers, tokens;
  double sigma;
  bool all_sources;  // scope all: every node of every layer is a source; else the CLS node of the last layer
};

const Case kCases[] = {
    {"cls/L12_N197_sigma1", 12, 197, 1.0, false}, {"cls/L12_N197_sigma3", 12, 197, 3.0, false},
    {"all/L12_N40_sigma1", 12, 40, 1.0, true},    {"all/L12_N40_sigma3", 12, 40, 3.0, true},
    {"all/L6_N32_sigma1", 6, 32, 1.0, true},
};

void run_attnlens(benchmark::State& state, const Case& c) {
  const Array caps = capacities(c.layers, c.tokens, c.sigma);
  for (auto _ : state) {
    if (c.all_sources) {
      benchmark::DoNotOptimize(attnlens::attention_flow_all(caps, 1));
    } else {
      benchmark::DoNotOptimize(attnlens::attention_flow_from(caps, c.layers, 0));
    }
  }
}

void run_lemon(benchmark::State& state, const Case& c) {
  const Array caps = capacities(c.layers, c.tokens, c.sigma);
  std::vector<double> out(static_cast<size_t>(c.tokens));
  for (auto _ : state) {
    if (c.all_sources) {
      for (int l = 1; l <= c.layers; ++l)
        for (int q = 0; q < c.tokens; ++q)
          attnlens::testing::lemon_flows_to_each_input(caps.data.data(), c.layers, c.tokens, l, q, out.data());
    } else {
      attnlens::testing::lemon_flows_to_each_input(caps.data.data(), c.layers, c.tokens, c.layers, 0, out.data());
    }
    benchmark::DoNotOptimize(out.data());
  }
}

// Collects per-benchmark mean real time so the ratio table can be printed after the run.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs)
      if (run.run_type == Run::RT_Iteration || run.aggregate_name == "mean")
        millis_[run.run_name.function_name] = run.GetAdjustedRealTime();  // in the benchmark unit: ms
    ConsoleReporter::ReportRuns(runs);
  }
  void PrintRatios() const {
    std::printf("\n%-24s %14s %14s %10s\n", "case", "attnlens ms", "LEMON ms", "speed-up");
    for (const auto& c : kCases) {
      const auto ours = millis_.find(std::string("attnlens/") + c.name);
      const auto lemon = millis_.find(std::string("lemon/") + c.name);
      if (ours == millis_.end() || lemon == millis_.end()) continue;
      std::printf("%-24s %14.2f %14.2f %9.1fx\n", c.name, ours->second, lemon->second, lemon->second / ours->second);
    }
  }

 private:
  std::map<std::string, double> millis_;
};

}  // namespace

int main(int argc, char** argv) {
  for (const auto& c : kCases) {
    benchmark::RegisterBenchmark((std::string("attnlens/") + c.name).c_str(), run_attnlens, c)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("lemon/") + c.name).c_str(), run_lemon, c)
        ->Unit(benchmark::kMillisecond)
        ->Iterations(1);  // LEMON takes seconds per case; one timed run is plenty against a 10x gap
  }
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
