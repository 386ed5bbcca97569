// One model's forward pass (logits only, nothing recorded), timed on one thread: what bench/run_family_bench.py sets
// against PyTorch eager on the same weights and inputs.
//     forward_time text MODEL IDS.json [SECONDS]                 (IDS.json: a list of id lists, one per text)
//     forward_time image MODEL IMAGES.f32 BATCH SIZE [SECONDS]   (raw float32 [BATCH, 3, SIZE, SIZE], normalised)
// Prints "forward_ms <mean ms per forward>", "runs <n>" and the logits of the first input (so that the caller can
// check both ran the same model). Memory is kept for reuse as the CLI keeps it (io/system.hpp keep_freed_memory).
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/system.hpp"
#include "models/image_classifier.hpp"
#include "models/text_classifier.hpp"

namespace {

int time_forward(const std::function<torch::Tensor()>& forward, double seconds) {
  torch::Tensor logits = forward();  // warm-up
  int runs = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  while (elapsed < seconds || runs < 3) {
    logits = forward();
    ++runs;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  std::cout << "forward_ms " << elapsed / runs * 1e3 << "\nruns " << runs << "\nlogits";
  for (std::int64_t c = 0; c < logits.size(1); ++c) std::cout << " " << logits[0][c].item<double>();
  std::cout << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage =
      "usage: forward_time text MODEL IDS.json [SECONDS] | forward_time image MODEL IMAGES.f32 BATCH SIZE [SECONDS]";
  if (argc < 4) {
    std::cerr << usage << std::endl;
    return 2;
  }
  torch::set_num_threads(1);
  attnlens::keep_freed_memory();  // as the CLI does
  const std::string kind = argv[1];
  if (kind == "text") {
    const double seconds = argc > 4 ? std::stod(argv[4]) : 3.0;
    const auto model = attnlens::load_text_classifier(argv[2]);
    std::ifstream in(argv[3]);
    const auto ids = nlohmann::json::parse(in).get<std::vector<std::vector<std::int64_t>>>();
    const attnlens::TextBatch batch = attnlens::make_text_batch(ids, {}, 0);
    return time_forward([&] { return model->forward(batch); }, seconds);
  }
  if (kind == "image" && argc >= 6) {
    const std::int64_t batch = std::stoll(argv[4]), size = std::stoll(argv[5]);
    const double seconds = argc > 6 ? std::stod(argv[6]) : 3.0;
    attnlens::ImageModelOptions options;
    options.image_size = static_cast<int>(size);
    const auto model = attnlens::load_image_classifier(argv[2], options);
    torch::Tensor images = torch::empty({batch, 3, size, size}, torch::kFloat32);
    std::ifstream in(argv[3], std::ios::binary);
    in.read(reinterpret_cast<char*>(images.data_ptr<float>()), static_cast<std::streamsize>(images.nbytes()));
    if (!in) {
      std::cerr << "forward_time: " << argv[3] << " holds fewer than " << images.nbytes() << " bytes" << std::endl;
      return 2;
    }
    return time_forward([&] { return model->forward(images); }, seconds);
  }
  std::cerr << usage << std::endl;
  return 2;
}
