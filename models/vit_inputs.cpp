#include "models/vit_inputs.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace attnlens {

namespace fs = std::filesystem;

Preprocess model_preprocess(const ImageModelConfig& c, const std::string& preset_override) {
  const std::string preset = preset_override.empty() ? c.preprocess : preset_override;
  if (!preset.empty() && preset != "none") return preprocess_preset(preset, c.image_height);
  // Normalisation only; an image of another size is resized to the model's input exactly.
  Preprocess p;
  p.resize = ResizeMode::exact;
  p.resize_height = c.image_height;
  p.resize_width = c.image_width;
  p.interpolation = Interpolation::bilinear;
  if (c.mean.size() != 3 || c.std.size() != 3) throw InputError("the model's mean/std must have 3 values");
  std::copy(c.mean.begin(), c.mean.end(), p.mean.begin());
  std::copy(c.std.begin(), c.std.end(), p.std.begin());
  return p;
}

torch::Tensor model_input(const Array& tensor, const std::string& name, const ImageModelConfig& c) {
  if (tensor.shape != std::vector<std::int64_t>{c.in_chans, c.image_height, c.image_width})
    throw InputError(name + ": preprocessed to " + tensor.shape_string() + " but the model takes [" +
                     std::to_string(c.in_chans) + "," + std::to_string(c.image_height) + "," +
                     std::to_string(c.image_width) + "]; adjust --resize/--crop or --image-size");
  return torch::from_blob(const_cast<double*>(tensor.data.data()), tensor.shape, torch::kFloat64).to(torch::kFloat32);
}

ModelImage load_model_image(const std::string& path, const Preprocess& preprocess, const ImageModelConfig& c) {
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

ImageDataset open_model_dataset(const std::string& spec, const ImageModelConfig& c, std::size_t limit, bool shuffle,
                                std::uint64_t seed) {
  ImageDataset data = ImageDataset::open(spec, c.labels);
  data.select(limit, shuffle, seed);
  if (data.size() == 0) throw InputError(spec + ": no images selected");
  return data;
}

namespace {

// The box through preprocess()'s geometry: the resize scales each axis, the centre crop shifts it.
std::array<int, 4> box_through(const Box& b, cv::Size source, const Preprocess& p, const ImageModelConfig& c) {
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
                                const ImageModelConfig& c) {
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

std::string label_of(const ImageModelConfig& c, std::int64_t k) {
  return k >= 0 && k < static_cast<std::int64_t>(c.labels.size()) ? c.labels[k] : std::to_string(k);
}

}  // namespace attnlens
