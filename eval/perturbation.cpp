#include "eval/perturbation.hpp"

#include <cmath>

#include "eval/metrics.hpp"
#include "models/checkpoint.hpp"

namespace attnlens {

namespace {

torch::Tensor channel_tensor(const std::array<double, 3>& v) {
  return torch::tensor({v[0], v[1], v[2]}, torch::kFloat32).reshape({3, 1, 1});
}

}  // namespace

torch::Tensor InputSpace::black() const { return -channel_tensor(mean) / channel_tensor(std); }

torch::Tensor InputSpace::to_pixels(const torch::Tensor& x) const {
  return x * channel_tensor(std).to(x.device()) + channel_tensor(mean).to(x.device());
}

torch::Tensor InputSpace::from_pixels(const torch::Tensor& x) const {
  return (x - channel_tensor(mean).to(x.device())) / channel_tensor(std).to(x.device());
}

torch::Tensor patch_pixels(const torch::Tensor& grid, std::int64_t patch) {
  return grid.repeat_interleave(patch, 0).repeat_interleave(patch, 1);
}

PerturbationBatch::PerturbationBatch(const ImageClassifier& model, torch::Tensor image, InputSpace space, int batch,
                                     torch::Tensor fill)
    : model_(model),
      image_(image.to(torch::kFloat32).cpu()),
      black_(fill.defined() ? fill.to(torch::kFloat32).cpu().reshape({3, 1, 1}) : space.black()),
      batch_(std::max(1, batch)) {
  const ImageModelConfig& c = model.config();
  if (image_.dim() != 3 || image_.size(0) != 3 || image_.size(1) != c.image_height || image_.size(2) != c.image_width)
    throw InputError("perturbation: the image must be [3," + std::to_string(c.image_height) + "," +
                     std::to_string(c.image_width) + "], got " + shape_text(image_.sizes().vec()));
}

std::size_t PerturbationBatch::add_patches(std::vector<std::uint8_t> keep) {
  const ImageModelConfig& c = model_.config();
  if (static_cast<int>(keep.size()) != c.grid_h() * c.grid_w())
    throw InputError("perturbation: one keep flag per patch is needed");
  jobs_.push_back({std::move(keep), {}});
  return jobs_.size() - 1;
}

std::size_t PerturbationBatch::add_pixels(torch::Tensor keep) {
  if (keep.dim() != 2 || keep.size(0) != image_.size(1) || keep.size(1) != image_.size(2))
    throw InputError("perturbation: the pixel mask must be [H,W]");
  jobs_.push_back({{}, keep.to(torch::kBool).cpu()});
  return jobs_.size() - 1;
}

torch::Tensor PerturbationBatch::run() const {
  const ImageModelConfig& c = model_.config();
  const std::int64_t gh = c.grid_h(), gw = c.grid_w(), p = c.patch_size;
  std::vector<torch::Tensor> out;
  for (std::size_t begin = 0; begin < jobs_.size(); begin += batch_) {
    const std::size_t end = std::min(jobs_.size(), begin + static_cast<std::size_t>(batch_));
    std::vector<torch::Tensor> keeps;
    for (std::size_t j = begin; j < end; ++j) {
      const Job& job = jobs_[j];
      if (job.patches.empty()) {
        keeps.push_back(job.pixels.to(torch::kFloat32));
      } else {
        auto grid = torch::from_blob(const_cast<std::uint8_t*>(job.patches.data()), {gh, gw}, torch::kUInt8)
                        .to(torch::kFloat32);
        keeps.push_back(patch_pixels(grid, p));
      }
    }
    auto keep = torch::stack(keeps).unsqueeze(1);  // [b,1,H,W]
    auto images = black_ + (image_.unsqueeze(0) - black_) * keep;
    out.push_back(torch::softmax(model_.forward(images).to(torch::kCPU).to(torch::kFloat64), 1));
  }
  if (out.empty()) return torch::empty({0, 0}, torch::kFloat64);
  return torch::cat(out);
}

Array blank_out(const ImageClassifier& model, const torch::Tensor& image, std::int64_t target,
                const InputSpace& space, int batch, double* clean_probability) {
  const ImageModelConfig& c = model.config();
  const int patches = c.grid_h() * c.grid_w();
  PerturbationBatch queue(model, image, space, batch);
  queue.add_patches(std::vector<std::uint8_t>(patches, 1));  // the clean image, in the same batch
  for (int i = 0; i < patches; ++i) {
    std::vector<std::uint8_t> keep(patches, 1);
    keep[i] = 0;
    queue.add_patches(std::move(keep));
  }
  const torch::Tensor probs = queue.run().select(1, target).contiguous();
  const double* p = probs.data_ptr<double>();
  Array scores({c.grid_h(), c.grid_w()});
  for (int i = 0; i < patches; ++i) {
    const double drop = p[0] - p[i + 1];
    scores.data[i] = std::abs(drop) < kBlankOutTieTolerance ? 0.0 : drop;
  }
  if (clean_probability != nullptr) *clean_probability = p[0];
  return scores;
}

CurveJobs queue_deletion_insertion(PerturbationBatch& queue, const std::vector<double>& relevance) {
  const std::vector<int> order = descending_order(relevance);
  const std::size_t n = relevance.size();
  CurveJobs jobs;
  std::vector<std::uint8_t> deleted(n, 1), inserted(n, 0);
  for (std::size_t k = 0; k <= n; ++k) {
    if (k > 0) deleted[order[k - 1]] = 0, inserted[order[k - 1]] = 1;
    jobs.deletion.push_back(queue.add_patches(deleted));
    jobs.insertion.push_back(queue.add_patches(inserted));
  }
  return jobs;
}

const std::vector<double>& perturbation_steps() {
  static const std::vector<double> steps{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  return steps;
}

namespace {

// The map [gh,gw] upsampled bilinearly (align_corners false) to the queue's image, flattened: [H*W] float32.
torch::Tensor upsampled_map(const PerturbationBatch& queue, const Array& map, const char* what) {
  if (map.rank() != 2) throw InputError(std::string(what) + " needs a [gh,gw] map, got " + map.shape_string());
  namespace F = torch::nn::functional;
  const auto grid =
      torch::from_blob(const_cast<double*>(map.data.data()), {1, 1, map.shape[0], map.shape[1]}, torch::kFloat64)
          .to(torch::kFloat32);
  const std::vector<std::int64_t> size{queue.height(), queue.width()};
  return F::interpolate(grid, F::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false))
      .flatten();
}

}  // namespace

std::vector<std::size_t> queue_perturbation(PerturbationBatch& queue, const Array& map) {
  const std::int64_t h = queue.height(), w = queue.width();
  // Chefer's min-max normalisation of the upsampled map does not change the order, so it is left out.
  const auto pixels = upsampled_map(queue, map, "perturbation");
  std::vector<std::size_t> jobs;
  for (const bool negative : {false, true}) {
    // Stable sort: ties go in pixel order, so the result does not depend on the sort's internals.
    const auto order = std::get<1>(torch::sort(negative ? -pixels : pixels, /*stable=*/true, 0, /*descending=*/true));
    for (double s : perturbation_steps()) {
      const auto count = static_cast<std::int64_t>(std::floor(static_cast<double>(h * w) * s));
      auto keep = torch::ones({h * w}, torch::kBool);
      keep.index_fill_(0, order.slice(0, 0, count), false);
      jobs.push_back(queue.add_pixels(keep.reshape({h, w})));
    }
  }
  return jobs;
}

SacoJobs queue_saco(PerturbationBatch& queue, const Array& map, int groups, SacoBoundaries boundaries) {
  const std::int64_t h = queue.height(), w = queue.width(), n = h * w;
  if (groups < 2 || groups > n) throw InputError("SaCo needs between 2 and " + std::to_string(n) + " groups");
  const auto pixels = upsampled_map(queue, map, "SaCo").to(torch::kFloat64);
  const auto order = std::get<1>(torch::sort(pixels, /*stable=*/true, 0, /*descending=*/true));
  const auto sorted = pixels.index_select(0, order);
  SacoJobs jobs;
  std::int64_t begin = 0;
  for (int i = 1; i <= groups; ++i) {
    const double edge = static_cast<double>(i) * static_cast<double>(n) / groups;
    const std::int64_t end = i == groups ? n
                             : boundaries == SacoBoundaries::Ceil ? static_cast<std::int64_t>(std::ceil(edge))
                                                                  : static_cast<std::int64_t>(edge);
    jobs.salience.push_back(sorted.slice(0, begin, end).sum().item<double>());
    auto keep = torch::ones({n}, torch::kBool);
    keep.index_fill_(0, order.slice(0, begin, end), false);
    jobs.copies.push_back(queue.add_pixels(keep.reshape({h, w})));
    begin = end;
  }
  return jobs;
}

}  // namespace attnlens
