// Colour maps for heat maps: OpenCV's own tables (spec section 11), so overlays match the reference scripts, which
// all call cv2.applyColorMap(np.uint8(255 * mask), cv2.COLORMAP_JET).
#pragma once

#include <string>

#include <opencv2/core.hpp>

#include "../core/api.hpp"
#include "../core/array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

enum class Colormap {
  jet,      ///< cv::COLORMAP_JET: vit-explain, Chefer et al. overlays
  /// cv::COLORMAP_VIRIDIS: DINO per-head maps. OpenCV 4.6's table is matplotlib's rounded to 8 bits; DINO's
  /// plt.imsave truncates instead (and indexes with floor(256x), not floor(255x)), so its pixels can be 1 lower.
  viridis,
};

/// "jet" | "viridis". Throws InputError otherwise.
Colormap parse_colormap(const std::string& name);

/// A rank-2 Array [h,w] as a CV_32F matrix (the references hold masks in float32). Throws InputError for another
/// rank or an empty array.
cv::Mat array_to_mat32(const Array& map);

/// np.uint8(255 * v) as the references compute it: the product in float32, then TRUNCATION. Values are clamped to
/// [0,1] first (NaN counts as 0), where NumPy would wrap around. Input: one channel, CV_32F or CV_64F.
cv::Mat to_u8_truncated(const cv::Mat& values);

/// (v - min) / (max - min) in float32 (a constant map gives zeros; NaN counts as the minimum).
cv::Mat minmax_normalize(const cv::Mat& values);

/// cv::applyColorMap on a CV_8UC1 image; the result is CV_8UC3 in BGR order.
cv::Mat apply_colormap(const cv::Mat& u8, Colormap map);

/// apply_colormap(to_u8_truncated(values)): values in [0,1] to BGR.
cv::Mat colorize(const cv::Mat& values, Colormap map);

}  // namespace attnlens
ATTNLENS_API_END
