// Images and data-set items as an image model's input: the preprocessing the model expects, image files and
// preprocessed tensors checked against its input size, batches, and data-set items with their object boxes carried
// through the resize and crop into model-input pixels.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../io/datasets.hpp"
#include "../io/image.hpp"
#include "image_classifier.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// The preprocessing `config` expects: its preset (spec 9), or for "none" (or no preset) a resize to the model's
/// input size and normalisation with the config's own mean/std. A non-empty `preset` replaces the config's.
Preprocess model_preprocess(const ImageModelConfig& config, const std::string& preset = "");

/// A preprocessed [C,H,W] array as the model's float32 input; InputError naming `name` unless it has the model's
/// input size.
torch::Tensor model_input(const Array& image, const std::string& name, const ImageModelConfig& config);

/// One image ready for the model: its normalised tensor and the 8-bit RGB picture it came from (empty for .npy).
struct ModelImage {
  std::string path;
  torch::Tensor tensor;  ///< [3, H, W] float32
  cv::Mat rgb;
};

/// Reads and preprocesses one image file (or loads a [3,H,W] .npy as is), checking it matches the model's input.
ModelImage load_model_image(const std::string& path, const Preprocess& preprocess, const ImageModelConfig& config);

/// Stacks images[begin, end) into [B,3,H,W].
torch::Tensor stack_batch(const std::vector<ModelImage>& images, std::size_t begin, std::size_t end);

/// Opens a data set (io/datasets.hpp) for the model: class folders are matched to the model's labels; limit,
/// shuffle and seed as ImageDataset::select. InputError when nothing is selected.
ImageDataset open_model_dataset(const std::string& spec, const ImageModelConfig& config, std::size_t limit, bool shuffle,
                                std::uint64_t seed);

/// One data-set item ready for the model, its object box (if any) carried through the resize and crop into
/// model-input pixels: [x0, y0, x1, y1), widened to whole pixels and clipped to the input.
struct DatasetImage {
  ModelImage image;
  int label = -1;
  std::optional<std::array<int, 4>> box;
};
/// InputError for a label the model does not have.
DatasetImage load_dataset_image(const ImageDataset& data, std::size_t index, const Preprocess& preprocess,
                                const ImageModelConfig& config);

/// Display name of class `c` (its number when the model has no labels).
std::string label_of(const ImageModelConfig& config, std::int64_t c);

}  // namespace attnlens
ATTNLENS_API_END
