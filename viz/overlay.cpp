#include "viz/overlay.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "io/atomic_file.hpp"

namespace attnlens {

namespace {

void require_rgb8(const cv::Mat& rgb, const char* who) {
  if (rgb.empty() || rgb.type() != CV_8UC3)
    throw InputError(std::string(who) + ": expected a non-empty 8-bit 3-channel RGB image");
}

// heat/255 + photo (both float32, BGR slots), divided by the global maximum, then uint8(255*cam) truncated: the
// tail that vit-explain's show_mask_on_image and Chefer's show_cam_on_image share.
cv::Mat blend_and_normalise(const cv::Mat& heat_bgr, const cv::Mat& photo_f32) {
  cv::Mat cam(heat_bgr.size(), CV_32FC3);
  float top = 0.0f;
  for (int y = 0; y < cam.rows; ++y) {
    const std::uint8_t* h = heat_bgr.ptr<std::uint8_t>(y);
    const float* p = photo_f32.ptr<float>(y);
    float* c = cam.ptr<float>(y);
    for (int i = 0; i < cam.cols * 3; ++i) {
      c[i] = static_cast<float>(h[i]) / 255.0f + p[i];
      top = std::max(top, c[i]);
    }
  }
  cv::Mat out(cam.size(), CV_8UC3);
  for (int y = 0; y < cam.rows; ++y) {
    const float* c = cam.ptr<float>(y);
    std::uint8_t* o = out.ptr<std::uint8_t>(y);
    // top > 0 always: the JET table has no black entry, so the heat alone is positive somewhere.
    for (int i = 0; i < cam.cols * 3; ++i) o[i] = static_cast<std::uint8_t>(255.0f * (c[i] / top));
  }
  return out;
}

// Outline of a 0/1 mask image (CV_8U, any nonzero = inside), drawn 1 pixel wide. The padding makes regions that touch
// the border close along it, as DINO pads before find_contours.
void draw_mask_outline(cv::Mat& bgr, const cv::Mat& mask_u8, const cv::Scalar& colour) {
  cv::Mat padded;
  cv::copyMakeBorder(mask_u8, padded, 1, 1, 1, 1, cv::BORDER_CONSTANT, cv::Scalar(0));
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(padded, contours, cv::RETR_LIST, cv::CHAIN_APPROX_NONE, cv::Point(-1, -1));
  cv::drawContours(bgr, contours, -1, colour, 1, cv::LINE_8);
}

cv::Mat mask_to_u8(const Array& mask) {
  const cv::Mat m = array_to_mat32(mask);
  cv::Mat u8(m.size(), CV_8U);
  for (int y = 0; y < m.rows; ++y)
    for (int x = 0; x < m.cols; ++x) u8.at<std::uint8_t>(y, x) = m.at<float>(y, x) > 0.5f ? 1 : 0;
  return u8;
}

// Slices [H,h,w] into H arrays [h,w].
std::vector<Array> unstack(const Array& stacked, const char* what) {
  if (stacked.rank() != 3)
    throw InputError(std::string("head_grid: ") + what + " must have shape [H,h,w], got " + stacked.shape_string());
  std::vector<Array> out;
  const std::size_t plane = static_cast<std::size_t>(stacked.shape[1] * stacked.shape[2]);
  for (std::int64_t i = 0; i < stacked.shape[0]; ++i) {
    Array a({stacked.shape[1], stacked.shape[2]});
    std::copy_n(stacked.data.begin() + static_cast<std::ptrdiff_t>(i * plane), plane, a.data.begin());
    out.push_back(std::move(a));
  }
  return out;
}

cv::Size cell_size(const Array& map, int cell) {
  const double h = static_cast<double>(map.shape[0]), w = static_cast<double>(map.shape[1]);
  if (w >= h) return cv::Size(cell, std::max(1, static_cast<int>(std::lround(cell * h / w))));
  return cv::Size(std::max(1, static_cast<int>(std::lround(cell * w / h))), cell);
}

// Shortens `text` with ".." until it fits `width` pixels in the label font.
std::string fit_label(const std::string& text, int width, double scale) {
  int baseline = 0;
  std::string t = text;
  while (!t.empty() && cv::getTextSize(t, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &baseline).width > width) {
    t.pop_back();
    if (t.size() <= 2) break;
    if (cv::getTextSize(t + "..", cv::FONT_HERSHEY_SIMPLEX, scale, 1, &baseline).width <= width) return t + "..";
  }
  return t;
}

}  // namespace

cv::Mat upsample_bilinear(const Array& map, cv::Size size) {
  const cv::Mat m = array_to_mat32(map);
  if (size.width < 1 || size.height < 1) throw InputError("upsample_bilinear: empty target size");
  cv::Mat out;
  cv::resize(m, out, size, 0, 0, cv::INTER_LINEAR);
  return out;
}

cv::Mat upsample_nearest(const cv::Mat& image, cv::Size size) {
  if (image.empty() || size.width < 1 || size.height < 1) throw InputError("upsample_nearest: empty image or size");
  const cv::Mat src = image.isContinuous() ? image : image.clone();
  cv::Mat out(size, src.type());
  const std::size_t px = src.elemSize();
  for (int y = 0; y < size.height; ++y) {
    const int sy = static_cast<int>(static_cast<std::int64_t>(y) * src.rows / size.height);
    const std::uint8_t* in = src.ptr<std::uint8_t>(sy);
    std::uint8_t* o = out.ptr<std::uint8_t>(y);
    for (int x = 0; x < size.width; ++x) {
      const int sx = static_cast<int>(static_cast<std::int64_t>(x) * src.cols / size.width);
      std::copy_n(in + sx * px, px, o + x * px);
    }
  }
  return out;
}

cv::Mat overlay_vit_explain(const cv::Mat& rgb, const Array& mask) {
  require_rgb8(rgb, "overlay_vit_explain");
  const cv::Mat heat = colorize(upsample_bilinear(mask, rgb.size()), Colormap::jet);
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  // A true division, as NumPy's float32(img) / 255: multiplying by a rounded 1/255 can differ in the last bit.
  cv::Mat photo(bgr.size(), CV_32FC3);
  for (int y = 0; y < photo.rows; ++y) {
    const std::uint8_t* b = bgr.ptr<std::uint8_t>(y);
    float* p = photo.ptr<float>(y);
    for (int i = 0; i < photo.cols * 3; ++i) p[i] = static_cast<float>(b[i]) / 255.0f;
  }
  return blend_and_normalise(heat, photo);
}

cv::Mat overlay_chefer(const cv::Mat& rgb, const Array& mask, bool reproduce_colour_swap) {
  require_rgb8(rgb, "overlay_chefer");
  const cv::Mat heat = colorize(minmax_normalize(upsample_bilinear(mask, rgb.size())), Colormap::jet);
  cv::Mat ordered;
  if (reproduce_colour_swap)
    ordered = rgb;  // RGB photo in the BGR heat's slots: their displayed picture once saved through OpenCV
  else
    cv::cvtColor(rgb, ordered, cv::COLOR_RGB2BGR);
  double lo = 0, hi = 0;
  cv::minMaxLoc(ordered.reshape(1), &lo, &hi);
  cv::Mat photo(ordered.size(), CV_32FC3, cv::Scalar::all(0));
  if (hi > lo) {
    const float flo = static_cast<float>(lo), range = static_cast<float>(hi - lo);
    for (int y = 0; y < photo.rows; ++y) {
      const std::uint8_t* b = ordered.ptr<std::uint8_t>(y);
      float* p = photo.ptr<float>(y);
      for (int i = 0; i < photo.cols * 3; ++i) p[i] = (static_cast<float>(b[i]) - flo) / range;
    }
  }
  return blend_and_normalise(heat, photo);
}

cv::Mat overlay_dino_mask(const cv::Mat& rgb, const Array& mask, const MaskOverlayOptions& options) {
  require_rgb8(rgb, "overlay_dino_mask");
  if (!(options.alpha >= 0.0 && options.alpha <= 1.0)) throw InputError("mask overlay alpha must be in [0,1]");
  for (double c : options.colour)
    if (!(c >= 0.0 && c <= 1.0)) throw InputError("mask overlay colour components must be in [0,1]");
  const cv::Mat m = upsample_nearest(mask_to_u8(mask), rgb.size());
  cv::Mat out(rgb.size(), CV_8UC3);
  for (int y = 0; y < rgb.rows; ++y) {
    const std::uint8_t* in = rgb.ptr<std::uint8_t>(y);
    const std::uint8_t* mm = m.ptr<std::uint8_t>(y);
    std::uint8_t* o = out.ptr<std::uint8_t>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      const double a = options.alpha * mm[x];
      for (int c = 0; c < 3; ++c) {
        // DINO computes in float64 and stores into a uint32 array: truncation. BGR output: slot 2-c.
        const double v = in[3 * x + c] * (1.0 - a) + a * options.colour[c] * 255.0;
        o[3 * x + (2 - c)] = static_cast<std::uint8_t>(std::min(255.0, v));
      }
    }
  }
  if (options.contour) {
    const cv::Scalar colour(options.colour[2] * 255.0, options.colour[1] * 255.0, options.colour[0] * 255.0);
    draw_mask_outline(out, m, colour);
  }
  return out;
}

cv::Mat render_heatmap(const Array& map, cv::Size size, Colormap colormap, bool minmax) {
  const cv::Mat m = array_to_mat32(map);
  const cv::Mat coloured = colorize(minmax ? minmax_normalize(m) : m, colormap);
  return upsample_nearest(coloured, size);
}

cv::Mat head_grid(const std::vector<Array>& maps, const std::vector<std::string>& titles,
                  const std::vector<Array>& masks, const HeadGridOptions& options) {
  if (maps.empty()) throw InputError("head_grid: no maps");
  if (!titles.empty() && titles.size() != maps.size())
    throw InputError("head_grid: " + std::to_string(titles.size()) + " titles for " + std::to_string(maps.size()) +
                     " maps");
  if (!masks.empty() && masks.size() != maps.size())
    throw InputError("head_grid: " + std::to_string(masks.size()) + " masks for " + std::to_string(maps.size()) +
                     " maps");
  if (options.cell < 8 || options.cell > 4096) throw InputError("head_grid: cell size must be in [8, 4096]");
  if (options.columns < 0) throw InputError("head_grid: columns must be >= 0");
  for (const Array& a : maps) {
    array_to_mat32(a);  // rank and extent checks
    if (a.shape != maps[0].shape)
      throw InputError("head_grid: maps differ in shape: " + maps[0].shape_string() + " and " + a.shape_string());
  }
  for (const Array& a : masks)
    if (a.shape != maps[0].shape)
      throw InputError("head_grid: mask shape " + a.shape_string() + " differs from map shape " +
                       maps[0].shape_string());

  const int n = static_cast<int>(maps.size());
  const int cols = options.columns > 0 ? std::min(options.columns, n)
                                       : static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int rows = (n + cols - 1) / cols;
  const cv::Size cell = cell_size(maps[0], options.cell);
  const int gap = 4, label_h = 16;
  const double font_scale = 0.4;
  const cv::Scalar background(255, 255, 255), text_colour(32, 32, 32), outline(0, 0, 255);

  cv::Mat out(gap + rows * (label_h + cell.height + gap), gap + cols * (cell.width + gap), CV_8UC3, background);
  for (int i = 0; i < n; ++i) {
    const int x0 = gap + (i % cols) * (cell.width + gap);
    const int y0 = gap + (i / cols) * (label_h + cell.height + gap);
    cv::Mat tile = render_heatmap(maps[i], cell, options.colormap, true);
    if (!masks.empty()) draw_mask_outline(tile, upsample_nearest(mask_to_u8(masks[i]), cell), outline);
    tile.copyTo(out(cv::Rect(x0, y0 + label_h, cell.width, cell.height)));
    const std::string title = titles.empty() ? "head " + std::to_string(i) : titles[i];
    cv::putText(out, fit_label(title, cell.width, font_scale), cv::Point(x0, y0 + label_h - 4),
                cv::FONT_HERSHEY_SIMPLEX, font_scale, text_colour, 1, cv::LINE_AA);
  }
  return out;
}

cv::Mat head_grid(const Array& maps, const std::vector<std::string>& titles, const Array& masks,
                  const HeadGridOptions& options) {
  std::vector<Array> mask_list;
  if (masks.rank() != 0 || !masks.data.empty()) mask_list = unstack(masks, "masks");
  return head_grid(unstack(maps, "maps"), titles, mask_list, options);
}

std::string encode_png(const cv::Mat& image) {
  if (image.empty()) throw InputError("cannot encode an empty image as PNG");
  if ((image.depth() != CV_8U && image.depth() != CV_16U) ||
      (image.channels() != 1 && image.channels() != 3 && image.channels() != 4))
    throw InputError("PNG needs an 8- or 16-bit image with 1, 3 or 4 channels");
  std::vector<std::uint8_t> buf;
  try {
    if (!cv::imencode(".png", image, buf)) throw InputError("PNG encoding failed");
  } catch (const cv::Exception& e) {
    throw InputError(std::string("PNG encoding failed: ") + e.what());
  }
  return std::string(buf.begin(), buf.end());
}

void write_png(const std::string& path, const cv::Mat& image) {
  std::string bytes;
  try {
    bytes = encode_png(image);
  } catch (const InputError& e) {
    throw InputError("cannot write " + path + ": " + e.what());
  }
  write_file_atomic(path, bytes);
}

std::string png_data_uri(const cv::Mat& image) { return "data:image/png;base64," + base64_encode(encode_png(image)); }

std::string base64_encode(const std::string& bytes) {
  static const char* const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<std::uint8_t>(bytes[i]) << 16) |
                            (static_cast<std::uint8_t>(bytes[i + 1]) << 8) | static_cast<std::uint8_t>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<std::uint8_t>(bytes[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Array scale_for_display(const Array& map, bool minmax) {
  Array m = map;
  if (m.data.empty()) return m;
  const auto [lo_it, hi_it] = std::minmax_element(m.data.begin(), m.data.end());
  const double lo = *lo_it, hi = *hi_it;
  for (double& v : m.data) v = minmax ? (hi > lo ? (v - lo) / (hi - lo) : 0.0) : (hi > 0 ? v / hi : 0.0);
  return m;
}

}  // namespace attnlens
