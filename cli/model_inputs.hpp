// What every model-backed subcommand shares: options naming the model and the preprocessing, and turning image
// paths (files, folders, preprocessed .npy tensors) into one batch for the model.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/attention_commands.hpp"
#include "explain/method.hpp"
#include "models/vit_inputs.hpp"

namespace attnlens::cli {

struct ModelOptions {
  std::string model;           ///< .safetensors file or folder with model.safetensors (+ config.json)
  std::string device = "cpu";  ///< cpu | cuda
  std::string preset;          ///< empty: what the model's config.json says
  std::string resize, crop, interpolation, mean, std;  ///< explicit overrides of the preset
  int image_size = 0;  ///< > 0: run the model at this input size (position embeddings resampled)
  std::string pos_interpolation;  ///< empty: the checkpoint's own resampling (bicubic, bicubic-antialias, offset)
  std::vector<std::string> labels;  ///< CLIP's zero-shot classes as text prompts
  int batch = 16;
};

/// Adds --model, --device, --labels, --preset, --resize, --crop, --interpolation, --mean, --std, --image-size,
/// --pos-interpolation, --batch.
void add_model_options(CLI::App* app, ModelOptions& options);

/// Path of a bundled file or folder (e.g. "data/models/fmnist-vit") from the working directory or the checkout
/// holding the executable; "" when not found.
std::string find_bundled(const std::string& relative);

/// Loads the image model named by the options, of whichever family (InputError for a bad path, naming or device).
std::unique_ptr<ImageClassifier> load_model(const ModelOptions& options);

/// The preprocessing to apply: --preset, else the model's own, then any explicit overrides.
Preprocess resolve_preprocess(const ModelOptions& options, const ImageModelConfig& config);

/// Image files named by `inputs`: files as given, folders expanded to their images (and .npy) in name order.
std::vector<std::string> expand_image_paths(const std::vector<std::string>& inputs);

/// LibTorch's threads: `threads`; when 0, one MPI rank's share of its node's cores (cli/processes.hpp), or else
/// free_cores() (io/system.hpp): on a shared machine threads beyond the free cores only wait for one another.
void set_threads(int threads);

/// The options as a run's identity records them (cli/item_run.hpp): what a resumed or merged run must share.
nlohmann::json model_options_json(const ModelOptions& options);
/// What an image run's identity records of its model and data: the model, its options, the data, --limit, --shuffle
/// and --seed.
nlohmann::json image_run_json(const ModelOptions& options, const std::string& data, std::size_t limit, bool shuffle,
                              std::uint64_t seed);

/// Options of the methods that run the model again (attnlrp, cp-lrp, bi-attn, bi-attn-token, atman), for explain
/// and evaluate: --gamma-conv, --gamma-linear, --gamma-attention-projections, --bi-start-layer, --atman-factor,
/// --atman-threshold (a number or none, into `atman_threshold`), --method-batch; --steps with `with_steps`.
void add_relevance_options(CLI::App* app, MethodSettings& settings, std::string& atman_threshold, bool with_steps);
/// settings.atman_threshold from the option's text ("none": NaN). InputError for anything else but a number.
void resolve_relevance_options(MethodSettings& settings, const std::string& atman_threshold);

/// An 8-bit RGB picture in OpenCV's BGR order, for encode_png and the overlays' outputs.
cv::Mat rgb_to_bgr(const cv::Mat& rgb);

}  // namespace attnlens::cli
