#include "core/attention_flow.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/layered_flow.hpp"

namespace attnlens {

namespace {

struct StackDims {
  int layers;
  int tokens;
};

StackDims check_capacities(const Array& capacities) {
  if (capacities.rank() != 3 || capacities.shape[1] != capacities.shape[2] || capacities.shape[0] < 1 ||
      capacities.shape[1] < 1)
    throw InputError("flow capacities must have shape [L,N,N], got " + capacities.shape_string());
  return {static_cast<int>(capacities.shape[0]), static_cast<int>(capacities.shape[1])};
}

int resolve_threads(int threads) {
  if (threads < 0) throw InputError("--threads must be >= 0, got " + std::to_string(threads));
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return threads;
}

}  // namespace

Array flow_capacities(const AttentionView& attention, Residual residual) {
  return add_residual(fuse_heads(attention, HeadFusion::Mean), residual);
}

Array attention_flow_from(const Array& capacities, int layer, int token) {
  const StackDims d = check_capacities(capacities);
  if (layer < 1 || layer > d.layers)
    throw InputError("flow source layer must be in 1.." + std::to_string(d.layers) + ", got " + std::to_string(layer));
  if (token < 0 || token >= d.tokens)
    throw InputError("flow source token must be in 0.." + std::to_string(d.tokens - 1) + ", got " +
                     std::to_string(token));
  Array out({d.tokens});
  LayeredMaxFlow solver(capacities.data.data(), d.layers, d.tokens);
  solver.flows_to_each_input(layer, token, out.data.data());
  return out;
}

Array attention_flow_all(const Array& capacities, int threads, const ProgressFn& progress, const CancelFlag* cancel) {
  const StackDims d = check_capacities(capacities);
  threads = resolve_threads(threads);
  Array out({d.layers, d.tokens, d.tokens});
  const long long total = static_cast<long long>(d.layers) * d.tokens;
  // Deep sources cost the most (their graph spans every layer below), so hand them out first for better balance.
  std::atomic<long long> next{0};
  long long done = 0;  // guarded by progress_mutex
  std::mutex progress_mutex;
  std::atomic<bool> stopped{false};
  auto worker = [&] {
    LayeredMaxFlow solver(capacities.data.data(), d.layers, d.tokens);
    for (long long job = next++; job < total; job = next++) {
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        stopped = true;
        return;
      }
      const int layer = d.layers - static_cast<int>(job / d.tokens);
      const int token = static_cast<int>(job % d.tokens);
      double* row = out.data.data() + (static_cast<size_t>(layer - 1) * d.tokens + token) * d.tokens;
      solver.flows_to_each_input(layer, token, row);
      if (progress) {
        // Count under the lock so that the callback sees 1, 2, ..., total in order, from one thread at a time.
        std::lock_guard<std::mutex> lock(progress_mutex);
        progress(++done, total);
      }
    }
  };
  const int n_threads = static_cast<int>(std::min<long long>(threads, total));
  if (n_threads <= 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < n_threads; ++t) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
  }
  if (stopped) throw Cancelled();
  return out;
}

Array metzger_flow(const Array& capacities, int output_token, MetzgerForm form) {
  const StackDims d = check_capacities(capacities);
  if (output_token < 0 || output_token >= d.tokens)
    throw InputError("output token must be in 0.." + std::to_string(d.tokens - 1) + ", got " +
                     std::to_string(output_token));
  // Metzger's graph is Abnar's with every edge reversed (input -> output). Reversing all edges and swapping source
  // and sink keeps every max-flow value and maps a flow onto a flow, so both forms are solved on Abnar's orientation:
  // per token, the flow from (L, output) down to input k; Shapley, one flow from (L, output) to all inputs at once.
  if (form == MetzgerForm::PerToken) return attention_flow_from(capacities, d.layers, output_token);
  Array out({d.tokens});
  LayeredMaxFlow solver(capacities.data.data(), d.layers, d.tokens);
  solver.flow_to_all_inputs(d.layers, output_token, out.data.data());
  return out;
}

}  // namespace attnlens
