#include "cli/model_inputs.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "cli/processes.hpp"
#include "core/array.hpp"
#include "io/system.hpp"

namespace attnlens::cli {

namespace fs = std::filesystem;

void add_model_options(CLI::App* app, ModelOptions& o) {
  app->add_option("-m,--model", o.model,
                  "Model: a .safetensors file or a folder with model.safetensors and its config files: ViT/DeiT/DINO "
                  "(timm or Hugging Face names), DeiT III, DINOv2 (hub, timm or Hugging Face names, with or without "
                  "registers) or CLIP (open_clip or Hugging Face names); default: the bundled data/models/fmnist-vit");
  app->add_option("--labels", o.labels,
                  "CLIP: the classes as text prompts, comma-separated (\"a photo of a cat,a photo of a dog\"); the "
                  "logits are the image's scaled cosine similarity with each prompt")
      ->delimiter(',');
  app->add_option("--device", o.device, "cpu (default) or cuda (when this LibTorch has CUDA)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app->add_option("--preset", o.preset,
                  "Preprocessing preset (spec 9): timm-deit, timm-vit, hf, dino, clip, vit-explain, or none (only "
                  "normalise); default: the model's config.json, else the family's (ViT: timm-vit for timm names, "
                  "hf for Hugging Face; DeiT III: timm-deit; DINOv2: dino; CLIP: clip)");
  app->add_option("--resize", o.resize, "Override the resize: S (shorter side), HxW (exact) or none");
  app->add_option("--crop", o.crop, "Override the center crop: S, HxW or none");
  app->add_option("--interpolation", o.interpolation, "Override the resize filter: bicubic, bilinear, nearest, area");
  app->add_option("--mean", o.mean, "Override the normalisation mean: one value or three (R,G,B)");
  app->add_option("--std", o.std, "Override the normalisation std: one value or three (R,G,B)");
  app->add_option("--image-size", o.image_size,
                  "Run the model at this square input size, its position embeddings resampled as the checkpoint's "
                  "source does (see --pos-interpolation); default: the size it was trained at (DINOv2: 224)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--pos-interpolation", o.pos_interpolation,
                  "How --image-size (or DINOv2's 224 default) resamples the position embeddings: bicubic, "
                  "bicubic-antialias or offset (DINOv2's own (new+0.1)/old scale factor); default: what the "
                  "checkpoint's source code does")
      ->check(CLI::IsMember({"bicubic", "bicubic-antialias", "offset"}));
  app->add_option("--batch", o.batch, "Images per forward pass")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option_function<std::int64_t>(
      "--max-image-pixels", [](const std::int64_t& n) { set_max_image_pixels(n); },
      "Largest image, decoded or resized, in pixels (default " + std::to_string(kDefaultMaxImagePixels) + ")");
}

namespace {

std::string default_model_path() {
  if (const char* env = std::getenv("ATTNLENS_MODEL")) return env;
  const std::string found = find_bundled("data/models/fmnist-vit");
  if (found.empty()) throw InputError("no --model given and the bundled model data/models/fmnist-vit was not found");
  return found;
}

}  // namespace

std::string find_bundled(const std::string& relative) {
  // From the working directory, else from the folders above the executable (a build folder inside the checkout).
  if (fs::exists(relative)) return relative;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path())
      if (fs::exists(dir / relative)) return (dir / relative).string();
  return "";
}

std::unique_ptr<ImageClassifier> load_model(const ModelOptions& o) {
  const std::string path = o.model.empty() ? default_model_path() : o.model;
  ImageModelOptions options;
  options.device = o.device == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  options.image_size = o.image_size;
  if (!o.pos_interpolation.empty()) options.position_resize = parse_position_resize(o.pos_interpolation);
  options.prompts = o.labels;
  return load_image_classifier(path, options);
}

Preprocess resolve_preprocess(const ModelOptions& o, const ImageModelConfig& c) {
  Preprocess p = model_preprocess(c, o.preset);
  if (!o.resize.empty()) parse_resize(o.resize, p);
  if (!o.crop.empty()) parse_crop(o.crop, p);
  if (!o.interpolation.empty()) p.interpolation = parse_interpolation(o.interpolation);
  if (!o.mean.empty()) p.mean = parse_channel_values(o.mean, "--mean", false);
  if (!o.std.empty()) p.std = parse_channel_values(o.std, "--std", true);
  return p;
}

std::vector<std::string> expand_image_paths(const std::vector<std::string>& inputs) {
  static const std::vector<std::string> extensions = {".png", ".jpg",  ".jpeg", ".bmp",
                                                      ".tif", ".tiff", ".webp", ".npy"};
  std::vector<std::string> paths;
  for (const auto& input : inputs) {
    if (!fs::is_directory(input)) {
      paths.push_back(input);  // a missing file is reported when it is read, with its name
      continue;
    }
    std::vector<std::string> found;
    for (const auto& entry : fs::directory_iterator(input)) {
      std::string ext = entry.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
      if (entry.is_regular_file() && std::find(extensions.begin(), extensions.end(), ext) != extensions.end())
        found.push_back(entry.path().string());
    }
    if (found.empty()) throw InputError(input + ": no images in this folder");
    std::sort(found.begin(), found.end());
    paths.insert(paths.end(), found.begin(), found.end());
  }
  if (paths.empty()) throw InputError("no input images");
  return paths;
}

void set_threads(int threads) {
  const int per_rank = default_threads_per_rank(Processes::job());  // 0 unless this is one of several MPI ranks
  torch::set_num_threads(threads > 0 ? threads : per_rank > 0 ? per_rank : free_cores());
}

nlohmann::json model_options_json(const ModelOptions& m) {
  return {{"preset", m.preset},       {"resize", m.resize},   {"crop", m.crop},
          {"interpolation", m.interpolation}, {"mean", m.mean}, {"std", m.std},
          {"image_size", m.image_size}, {"pos_interpolation", m.pos_interpolation},
          {"labels", m.labels},       {"batch", m.batch},     {"device", m.device}};
}

nlohmann::json image_run_json(const ModelOptions& m, const std::string& data, std::size_t limit, bool shuffle,
                              std::uint64_t seed) {
  return {{"model", m.model.empty() ? "bundled fmnist-vit" : m.model},
          {"model_options", model_options_json(m)},
          {"data", data},
          {"limit", limit},
          {"shuffle", shuffle},
          {"seed", seed}};
}

cv::Mat rgb_to_bgr(const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

void add_relevance_options(CLI::App* app, MethodSettings& s, std::string& atman_threshold, bool with_steps) {
  auto* g = app->add_option_group("Methods that run the model again (attnlrp, cp-lrp, chefer-lrp, bi-attn, agcam, "
                                  "atman)");
  g->add_option("--gamma-conv", s.gamma_conv,
                "attnlrp/cp-lrp: zennit's Gamma on the patch embedding (default 0.25, a toolkit choice: the "
                "reference sets none; 0 = the plain z-rule)");
  g->add_option("--gamma-linear", s.gamma_linear,
                "attnlrp/cp-lrp: Gamma on the feed-forward linears and the head (default 0.05; 0 = none)");
  g->add_flag("--gamma-attention-projections", s.gamma_attention_projections,
              "attnlrp/cp-lrp: Gamma also on qkv and the attention output projection (LXT's torchvision ViT never "
              "reaches them)");
  g->add_option("--lrp-epsilon", s.lrp_epsilon,
                "attnlrp/cp-lrp: the epsilon rule on the linear layers without Gamma, R_x = x * W^T (R_z / (z + "
                "eps sign z)) (default 0: LXT's efficient form, the plain z-rule; images and text)");
  g->add_option("--chefer-lrp-variant", s.chefer_lrp_variant,
                "chefer-lrp: transformer_attribution (default: the paper's map, from --start-layer), rollout (of the "
                "LRP attention relevance), last_layer, or full (pixel LRP summed over each patch)");
  g->add_option("--text-start-layer", s.text_start_layer,
                "chefer-lrp on text: first 0-based layer of the rollout (default -1: the last, as the BERT "
                "reference's start_layer 11 of 12; negative counts from the end)");
  g->add_option("--bi-start-layer", s.bi_start_layer,
                "bi-attn/bi-attn-token: first 0-based block aggregated (default, images: the authors' block 3 of "
                "12 for bi-attn, 5 of 12 for bi-attn-token, scaled to the depth; texts: their BERT code's last "
                "layer, and last 4 layers)");
  if (with_steps)
    g->add_option("--steps", s.steps, "bi-attn/bi-attn-token: points of the gradient path, 0 and 1 included "
                                      "(default 20)");
  g->add_option("--atman-factor", s.atman_factor, "atman: multiplier of the suppressed key column (default 0.1)");
  g->add_option("--atman-threshold", atman_threshold,
                "atman: cosine similarity from which tokens are suppressed with the explained one (default 0.6, the "
                "reference's), or none");
  g->add_option("--method-batch", s.batch, "atman/bi-attn: model inputs per pass (default 16)")
      ->check(CLI::PositiveNumber);
}

void resolve_relevance_options(MethodSettings& s, const std::string& atman_threshold) {
  if (atman_threshold == "none") {
    s.atman_threshold = std::nan("");
    return;
  }
  try {
    size_t used = 0;
    s.atman_threshold = std::stod(atman_threshold, &used);
    if (used != atman_threshold.size()) throw std::invalid_argument(atman_threshold);
  } catch (const std::exception&) {
    throw InputError("--atman-threshold must be a number in [0, 1] or none, got '" + atman_threshold + "'");
  }
}

}  // namespace attnlens::cli
