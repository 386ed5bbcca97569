#include "cli/model_inputs.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>

#include <opencv2/imgproc.hpp>

#include "core/array.hpp"

namespace attnlens::cli {

namespace fs = std::filesystem;

void add_model_options(CLI::App* app, ModelOptions& o) {
  app->add_option("-m,--model", o.model,
                  "Model: a .safetensors file (timm or Hugging Face ViT/DeiT/DINO names) or a folder with "
                  "model.safetensors and config.json (default: the bundled data/models/fmnist-vit)");
  app->add_option("--device", o.device, "cpu (default) or cuda (when this LibTorch has CUDA)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app->add_option("--preset", o.preset,
                  "Preprocessing preset (spec 9): timm-deit, timm-vit, hf, dino, vit-explain, or none (only "
                  "normalise); default: the model's config.json, else timm-vit for timm names and hf for Hugging Face");
  app->add_option("--resize", o.resize, "Override the resize: S (shorter side), HxW (exact) or none");
  app->add_option("--crop", o.crop, "Override the center crop: S, HxW or none");
  app->add_option("--interpolation", o.interpolation, "Override the resize filter: bicubic, bilinear, nearest, area");
  app->add_option("--mean", o.mean, "Override the normalisation mean: one value or three (R,G,B)");
  app->add_option("--std", o.std, "Override the normalisation std: one value or three (R,G,B)");
  app->add_option("--image-size", o.image_size,
                  "Run the model at this square input size; position embeddings are resampled bicubically as timm "
                  "does (default: the size it was trained at)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--batch", o.batch, "Images per forward pass")->check(CLI::PositiveNumber)->capture_default_str();
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

VisionTransformer load_model(const ModelOptions& o) {
  const std::string path = o.model.empty() ? default_model_path() : o.model;
  return VisionTransformer::load(path, o.device == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU),
                                 o.image_size);
}

Preprocess resolve_preprocess(const ModelOptions& o, const VitConfig& c) {
  const std::string preset = o.preset.empty() ? c.preprocess : o.preset;
  Preprocess p;
  if (preset == "none" || preset.empty()) {
    // Normalisation only; an image of another size is resized to the model's input exactly.
    p.resize = ResizeMode::exact;
    p.resize_height = c.image_height;
    p.resize_width = c.image_width;
    p.interpolation = Interpolation::bilinear;
    if (c.mean.size() != 3 || c.std.size() != 3) throw InputError("the model's mean/std must have 3 values");
    std::copy(c.mean.begin(), c.mean.end(), p.mean.begin());
    std::copy(c.std.begin(), c.std.end(), p.std.begin());
  } else {
    p = preprocess_preset(preset, c.image_height);
  }
  if (!o.resize.empty()) parse_resize(o.resize, p);
  if (!o.crop.empty()) parse_crop(o.crop, p);
  if (!o.interpolation.empty()) p.interpolation = parse_interpolation(o.interpolation);
  if (!o.mean.empty()) p.mean = parse_channel_values(o.mean, "--mean", false);
  if (!o.std.empty()) p.std = parse_channel_values(o.std, "--std", true);
  return p;
}

std::vector<std::string> expand_image_paths(const std::vector<std::string>& inputs) {
  static const std::vector<std::string> extensions = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".npy"};
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

namespace {

// A preprocessed [C,H,W] array as the model's float32 input; InputError naming `name` unless it has the model's size.
torch::Tensor model_input(const Array& tensor, const std::string& name, const VitConfig& c) {
  if (tensor.shape != std::vector<std::int64_t>{c.in_chans, c.image_height, c.image_width})
    throw InputError(name + ": preprocessed to " + tensor.shape_string() + " but the model takes [" +
                     std::to_string(c.in_chans) + "," + std::to_string(c.image_height) + "," +
                     std::to_string(c.image_width) + "]; adjust --resize/--crop or --image-size");
  return torch::from_blob(const_cast<double*>(tensor.data.data()), tensor.shape, torch::kFloat64).to(torch::kFloat32);
}

}  // namespace

ModelImage load_model_image(const std::string& path, const Preprocess& preprocess, const VitConfig& c) {
  ModelImage image;
  image.path = path;
  Array tensor;
  if (fs::path(path).extension() == ".npy") {
    tensor = load_preprocessed_npy(path, c.image_height, c.image_width);
  } else {
    PreprocessedImage p = attnlens::preprocess(read_image_rgb(path), preprocess);
    tensor = std::move(p.tensor);
    image.rgb = p.rgb;
  }
  image.tensor = model_input(tensor, path, c);
  return image;
}

torch::Tensor stack_batch(const std::vector<ModelImage>& images, size_t begin, size_t end) {
  std::vector<torch::Tensor> parts;
  for (size_t i = begin; i < end; ++i) parts.push_back(images[i].tensor);
  return torch::stack(parts);
}

ImageDataset open_model_dataset(const std::string& spec, const VitConfig& c, std::size_t limit, bool shuffle,
                                std::uint64_t seed) {
  ImageDataset data = ImageDataset::open(spec, c.labels);
  data.select(limit, shuffle, seed);
  if (data.size() == 0) throw InputError(spec + ": no images selected");
  return data;
}

namespace {

// The box through preprocess()'s geometry: the resize scales each axis, the centre crop shifts it.
std::array<int, 4> box_through(const Box& b, cv::Size source, const Preprocess& p, const VitConfig& c) {
  double sx = 1.0, sy = 1.0;
  int w = source.width, h = source.height;
  if (p.resize == ResizeMode::exact) {
    sx = static_cast<double>(p.resize_width) / w, sy = static_cast<double>(p.resize_height) / h;
    w = p.resize_width, h = p.resize_height;
  } else if (p.resize == ResizeMode::shorter_side) {
    const int shorter = std::min(w, h), longer = std::max(w, h);
    const int new_long = static_cast<int>(static_cast<double>(p.resize_shorter) * longer / shorter);
    const int nw = w <= h ? p.resize_shorter : new_long, nh = w <= h ? new_long : p.resize_shorter;
    sx = static_cast<double>(nw) / w, sy = static_cast<double>(nh) / h;
    w = nw, h = nh;
  }
  int ox = 0, oy = 0;
  if (p.crop_width > 0) ox = w >= p.crop_width ? center_crop_offset(w, p.crop_width) : -(p.crop_width - w) / 2;
  if (p.crop_height > 0) oy = h >= p.crop_height ? center_crop_offset(h, p.crop_height) : -(p.crop_height - h) / 2;
  const auto clip = [](double v, int hi) { return std::max(0, std::min(hi, static_cast<int>(v))); };
  return {clip(std::floor(b.x0 * sx) - ox, c.image_width), clip(std::floor(b.y0 * sy) - oy, c.image_height),
          clip(std::ceil(b.x1 * sx) - ox, c.image_width), clip(std::ceil(b.y1 * sy) - oy, c.image_height)};
}

}  // namespace

DatasetImage load_dataset_image(const ImageDataset& data, std::size_t index, const Preprocess& pre,
                                const VitConfig& c) {
  DatasetItem item = data.get(index);
  DatasetImage out;
  out.label = item.label;
  if (out.label >= c.num_classes)
    throw InputError(item.id + ": label " + std::to_string(out.label) + " is out of range: the model has " +
                     std::to_string(c.num_classes) + " classes");
  PreprocessedImage p = preprocess(item.rgb, pre);
  out.image.tensor = model_input(p.tensor, item.id, c);
  if (item.box) {
    const auto b = box_through(*item.box, item.rgb.size(), pre, c);
    if (b[2] > b[0] && b[3] > b[1]) out.box = b;  // a box cropped away entirely says nothing
  }
  out.image.path = item.id;
  out.image.rgb = p.rgb;
  return out;
}

void set_threads(int threads) {
  torch::set_num_threads(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

cv::Mat rgb_to_bgr(const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

std::string label_of(const VitConfig& c, std::int64_t k) {
  return k >= 0 && k < static_cast<std::int64_t>(c.labels.size()) ? c.labels[k] : std::to_string(k);
}

}  // namespace attnlens::cli
