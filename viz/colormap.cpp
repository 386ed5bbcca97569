#include "viz/colormap.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include <opencv2/imgproc.hpp>

namespace attnlens {

Colormap parse_colormap(const std::string& name) {
  if (name == "jet") return Colormap::jet;
  if (name == "viridis") return Colormap::viridis;
  throw InputError("colour map must be jet or viridis, got '" + name + "'");
}

cv::Mat array_to_mat32(const Array& map) {
  if (map.rank() != 2 || map.shape[0] < 1 || map.shape[1] < 1)
    throw InputError("a heat map must have shape [h,w] with h, w >= 1, got " + map.shape_string());
  if (map.shape[0] > std::numeric_limits<int>::max() || map.shape[1] > std::numeric_limits<int>::max())
    throw InputError("heat map " + map.shape_string() + " is too large");
  const int h = static_cast<int>(map.shape[0]), w = static_cast<int>(map.shape[1]);
  cv::Mat m(h, w, CV_32F);
  for (int y = 0; y < h; ++y) {
    float* row = m.ptr<float>(y);
    for (int x = 0; x < w; ++x) row[x] = static_cast<float>(map.data[static_cast<std::size_t>(y) * w + x]);
  }
  return m;
}

cv::Mat to_u8_truncated(const cv::Mat& values) {
  if (values.empty() || values.channels() != 1 || (values.depth() != CV_32F && values.depth() != CV_64F))
    throw InputError("to_u8_truncated: expected a non-empty one-channel float image");
  cv::Mat f;
  values.convertTo(f, CV_32F);
  cv::Mat out(f.size(), CV_8U);
  for (int y = 0; y < f.rows; ++y) {
    const float* in = f.ptr<float>(y);
    std::uint8_t* o = out.ptr<std::uint8_t>(y);
    for (int x = 0; x < f.cols; ++x) {
      // Clamp before scaling (not after) so the float32 product is exactly NumPy's for in-range values.
      const float v = std::isnan(in[x]) ? 0.0f : std::min(std::max(in[x], 0.0f), 1.0f);
      o[x] = static_cast<std::uint8_t>(255.0f * v);
    }
  }
  return out;
}

cv::Mat minmax_normalize(const cv::Mat& values) {
  if (values.empty() || values.channels() != 1)
    throw InputError("minmax_normalize: expected a non-empty one-channel image");
  cv::Mat f;
  values.convertTo(f, CV_32F);
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (int y = 0; y < f.rows; ++y) {
    const float* r = f.ptr<float>(y);
    for (int x = 0; x < f.cols; ++x)
      if (!std::isnan(r[x])) {
        lo = std::min(lo, r[x]);
        hi = std::max(hi, r[x]);
      }
  }
  cv::Mat out(f.size(), CV_32F, cv::Scalar(0));
  if (!(hi > lo) || !std::isfinite(hi - lo)) return out;
  const float range = hi - lo;
  for (int y = 0; y < f.rows; ++y) {
    const float* r = f.ptr<float>(y);
    float* o = out.ptr<float>(y);
    for (int x = 0; x < f.cols; ++x) o[x] = std::isnan(r[x]) ? 0.0f : (r[x] - lo) / range;
  }
  return out;
}

cv::Mat apply_colormap(const cv::Mat& u8, Colormap map) {
  if (u8.empty() || u8.type() != CV_8UC1)
    throw InputError("apply_colormap: expected a non-empty 8-bit one-channel image");
  cv::Mat out;
  cv::applyColorMap(u8, out, map == Colormap::jet ? cv::COLORMAP_JET : cv::COLORMAP_VIRIDIS);
  return out;
}

cv::Mat colorize(const cv::Mat& values, Colormap map) { return apply_colormap(to_u8_truncated(values), map); }

}  // namespace attnlens
