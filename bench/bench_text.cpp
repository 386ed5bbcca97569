// AttAttr cost on a BERT-base-shaped classifier (12 layers, 768 wide, 12 heads, random weights) and one 32-token
// sentence, m = 20 steps: attnlens' batched integration (the layers below the attributed one run once, the 20
// alphas of a layer run as one batch) against the 240 forward/backward passes run one by one, as the reference code
// does; both measured in this run. Also exact attention flow over every node (`--scope all`) of such a sentence.
//   bench_text [--benchmark_min_time=...]
// The model is written to a temporary safetensors file first (a few seconds).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/attention_flow.hpp"
#include "explain/text_methods.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "models/arrays.hpp"
#include "models/bert.hpp"

namespace {

using attnlens::Array;

constexpr int kLayers = 12, kWidth = 768, kHeads = 12, kTokens = 32, kSteps = 20;

std::string make_model() {
  const auto dir = std::filesystem::temp_directory_path() / "attnlens_bench_bert";
  const std::string path = (dir / "model.safetensors").string();
  if (std::filesystem::exists(path)) return dir.string();
  std::mt19937 rng(0);
  std::normal_distribution<double> normal(0.0, 0.02);
  std::vector<std::pair<std::string, Array>> tensors;
  auto add = [&](const std::string& name, std::vector<std::int64_t> shape, double fill = -1.0) {
    Array a(std::move(shape));
    for (double& v : a.data) v = fill >= 0 ? fill : normal(rng);
    tensors.emplace_back(name, std::move(a));
  };
  const std::int64_t D = kWidth, F = 4 * kWidth;
  add("bert.embeddings.word_embeddings.weight", {1000, D});
  add("bert.embeddings.position_embeddings.weight", {512, D});
  add("bert.embeddings.token_type_embeddings.weight", {2, D});
  add("bert.embeddings.LayerNorm.weight", {D}, 1.0);
  add("bert.embeddings.LayerNorm.bias", {D}, 0.0);
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    for (const char* m : {"query", "key", "value"}) {
      add(p + "attention.self." + m + ".weight", {D, D});
      add(p + "attention.self." + m + ".bias", {D});
    }
    add(p + "attention.output.dense.weight", {D, D});
    add(p + "attention.output.dense.bias", {D});
    add(p + "attention.output.LayerNorm.weight", {D}, 1.0);
    add(p + "attention.output.LayerNorm.bias", {D}, 0.0);
    add(p + "intermediate.dense.weight", {F, D});
    add(p + "intermediate.dense.bias", {F});
    add(p + "output.dense.weight", {D, F});
    add(p + "output.dense.bias", {D});
    add(p + "output.LayerNorm.weight", {D}, 1.0);
    add(p + "output.LayerNorm.bias", {D}, 0.0);
  }
  add("bert.pooler.dense.weight", {D, D});
  add("bert.pooler.dense.bias", {D});
  add("classifier.weight", {2, D});
  add("classifier.bias", {2});
  attnlens::write_file_atomic(path, attnlens::encode_safetensors(tensors));
  attnlens::write_file_atomic((dir / "config.json").string(), "{\"num_attention_heads\": 12}");
  return dir.string();
}

const attnlens::BertClassifier& model() {
  static const attnlens::BertClassifier m = attnlens::BertClassifier::load(make_model());
  return m;
}

attnlens::TextBatch sentence() {
  std::vector<std::int64_t> ids(kTokens);
  for (int t = 0; t < kTokens; ++t) ids[static_cast<size_t>(t)] = 5 + (t * 37) % 900;
  return attnlens::make_text_batch({ids}, {});
}

void BM_AttAttrBatched(benchmark::State& state) {
  attnlens::AttAttrOptions o;
  o.steps = kSteps;
  const auto text = sentence();
  for (auto _ : state) benchmark::DoNotOptimize(attnlens::attattr(model(), text, 0, o).data.data());
  state.counters["passes"] = kLayers * kSteps;
}

void BM_AttAttrOneByOne(benchmark::State& state) {
  attnlens::AttAttrOptions o;
  o.steps = kSteps;
  const auto text = sentence();
  for (auto _ : state) benchmark::DoNotOptimize(attnlens::attattr_one_by_one(model(), text, 0, o).data.data());
  state.counters["passes"] = kLayers * kSteps;
}

void BM_FlowScopeAll(benchmark::State& state) {
  const auto cap = model().capture(sentence());
  const Array attention = attnlens::image_layers(cap.attention, 0);
  const Array caps = attnlens::flow_capacities(attnlens::AttentionView::of(attention), attnlens::Residual::Half);
  for (auto _ : state) benchmark::DoNotOptimize(attnlens::attention_flow_all(caps, 1).data.data());
}

}  // namespace

BENCHMARK(BM_AttAttrBatched)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_AttAttrOneByOne)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_FlowScopeAll)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_MAIN();
