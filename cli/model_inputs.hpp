// What every model-backed subcommand shares: options naming the model and the preprocessing, and turning image
// paths (files, folders, preprocessed .npy tensors) into one batch for the model.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli/attention_commands.hpp"
#include "io/datasets.hpp"
#include "io/image.hpp"
#include "models/vit.hpp"

namespace attnlens::cli {

struct ModelOptions {
  std::string model;           ///< .safetensors file or folder with model.safetensors (+ config.json)
  std::string device = "cpu";  ///< cpu | cuda
  std::string preset;          ///< empty: what the model's config.json says
  std::string resize, crop, interpolation, mean, std;  ///< explicit overrides of the preset
  int image_size = 0;          ///< > 0: run the model at this input size (position embeddings resampled)
  int batch = 16;
};

/// Adds --model, --device, --preset, --resize, --crop, --interpolation, --mean, --std, --image-size, --batch.
void add_model_options(CLI::App* app, ModelOptions& options);

/// Path of a bundled file or folder (e.g. "data/models/fmnist-vit") from the working directory or the checkout
/// holding the executable; "" when not found.
std::string find_bundled(const std::string& relative);

/// Loads the model named by the options (InputError for a bad path, naming or device).
VisionTransformer load_model(const ModelOptions& options);

/// The preprocessing to apply: --preset, else the model's own, then any explicit overrides.
Preprocess resolve_preprocess(const ModelOptions& options, const VitConfig& config);

/// Image files named by `inputs`: files as given, folders expanded to their images (and .npy) in name order.
std::vector<std::string> expand_image_paths(const std::vector<std::string>& inputs);

/// One image ready for the model: its normalised tensor and the 8-bit RGB picture it came from (empty for .npy).
struct ModelImage {
  std::string path;
  torch::Tensor tensor;  ///< [3, H, W] float32
  cv::Mat rgb;
};

/// Reads and preprocesses one image (or loads a [3,H,W] .npy as is), checking it matches the model's input size.
ModelImage load_model_image(const std::string& path, const Preprocess& preprocess, const VitConfig& config);

/// Stacks tensors [3,H,W] into [B,3,H,W].
torch::Tensor stack_batch(const std::vector<ModelImage>& images, size_t begin, size_t end);

/// Opens --data for the model: class folders are matched to the model's labels; --limit/--shuffle/--seed applied.
ImageDataset open_model_dataset(const std::string& spec, const VitConfig& config, std::size_t limit, bool shuffle,
                                std::uint64_t seed);

/// One data-set item ready for the model, its object box (if any) carried through the resize and crop into
/// model-input pixels: [x0, y0, x1, y1), widened to whole pixels and clipped to the input.
struct DatasetImage {
  ModelImage image;
  int label = -1;
  std::optional<std::array<int, 4>> box;
};
DatasetImage load_dataset_image(const ImageDataset& data, std::size_t index, const Preprocess& preprocess,
                                const VitConfig& config);

/// LibTorch's threads: `threads`, or every core when 0 (Debian's LibTorch starts with one on some machines).
void set_threads(int threads);

/// An 8-bit RGB picture in OpenCV's BGR order, for encode_png and the overlays' outputs.
cv::Mat rgb_to_bgr(const cv::Mat& rgb);

/// Display name of class `c` ("3" when the model has no labels).
std::string label_of(const VitConfig& config, std::int64_t c);

}  // namespace attnlens::cli
