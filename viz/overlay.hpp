// Pictures of explanations: heat maps over the model's input image in the styles of the reference scripts
// (vit-explain, Chefer et al., DINO), per-head grids, and PNG output (files or data URIs for HTML).
// Images in are 8-bit RGB (as read_image_rgb / preprocess give them); images out are 8-bit BGR, OpenCV's order.
#pragma once

#include <array>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "../core/api.hpp"
#include "../core/array.hpp"
#include "colormap.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// The map [h,w] resized to `size` with cv::resize INTER_LINEAR (half-pixel centres, edge clamping; the same
/// numbers as PyTorch interpolate(bilinear, align_corners=False)), in float32. Throws InputError for a non-[h,w] map.
cv::Mat upsample_bilinear(const Array& map, cv::Size size);

/// Nearest-neighbour upsampling of any image: destination pixel (y,x) takes source (floor(y*h/H), floor(x*w/W)),
/// computed in integers so whole-number factors give exact patch blocks (PyTorch's "nearest", as DINO uses it).
cv::Mat upsample_nearest(const cv::Mat& image, cv::Size size);

/// jacobgil/vit-explain show_mask_on_image (spec 1.4), bit-exact: the mask is upsampled bilinearly to the image
/// size, heat = JET(uint8(255*mask)) (values outside [0,1] clamped), cam = heat/255 + bgr/255 in float32,
/// cam /= max(cam), out = uint8(255*cam) (truncation). The mask is used as given: vit-explain divides it by its
/// maximum beforehand (`--scale max` in the CLI).
cv::Mat overlay_vit_explain(const cv::Mat& rgb, const Array& mask);

/// Display scaling of a relevance map before an overlay (spec 1.4, 4.1): divided by its maximum as vit-explain does
/// (0 everywhere when the maximum is not positive), or min-max normalised as Chefer et al. do (0 for a constant map).
Array scale_for_display(const Array& map, bool minmax);

/// Chefer et al.'s visualisation (spec 4.1): the mask is upsampled bilinearly, then min-max normalised; the photo
/// is min-max normalised over all channels; then the same sum / max / uint8 steps as vit-explain. Their notebook adds
/// the BGR heat to the RGB photo and swaps channels for display, so the photo appears with red and blue exchanged;
/// `reproduce_colour_swap` reproduces that picture, the default keeps the photo's true colours.
cv::Mat overlay_chefer(const cv::Mat& rgb, const Array& mask, bool reproduce_colour_swap = false);

struct MaskOverlayOptions {
  /// RGB in [0,1]. DINO draws one "random" colour out of a single-element palette, which is always red.
  std::array<double, 3> colour{1.0, 0.0, 0.0};
  double alpha = 0.5;
  bool contour = true;  ///< outline the mask (1-pixel line in `colour`)
};

/// DINO display_instances (spec 7): the 0/1 mask [h,w] (values > 0.5 count as 1) upsampled NEAREST to the image
/// size, then per channel img*(1 - alpha*m) + alpha*m*colour*255, truncated to uint8, then the mask's outline.
/// Throws InputError for a non-[h,w] mask or a non-8UC3 image.
cv::Mat overlay_dino_mask(const cv::Mat& rgb, const Array& mask, const MaskOverlayOptions& options = {});

/// One map [h,w] as a colour picture of `size`: min-max normalised (minmax = true, as plt.imsave does) or taken as
/// [0,1], coloured, upsampled NEAREST.
cv::Mat render_heatmap(const Array& map, cv::Size size, Colormap colormap = Colormap::viridis, bool minmax = true);

struct HeadGridOptions {
  int cell = 160;   ///< pixels of each map's longer side, in [8, 4096]
  int columns = 0;  ///< 0: ceil(sqrt(count))
  Colormap colormap = Colormap::viridis;
};

/// Tiles per-head maps (each min-max normalised on its own, as DINO's per-head images) into one BGR picture,
/// row-major, each under a small title ("head i" when `titles` is empty). `masks`, when not empty, holds one 0/1 map
/// per head whose outline is drawn on that head's cell. All maps must share one shape.
/// Throws InputError for mismatched counts or shapes.
cv::Mat head_grid(const std::vector<Array>& maps, const std::vector<std::string>& titles = {},
                  const std::vector<Array>& masks = {}, const HeadGridOptions& options = {});
/// The same for stacked maps [H,h,w] (and stacked masks [H,h,w] or an empty Array).
cv::Mat head_grid(const Array& maps, const std::vector<std::string>& titles = {}, const Array& masks = Array(),
                  const HeadGridOptions& options = {});

/// PNG bytes of an 8-bit (or 16-bit) image with 1, 3 (BGR) or 4 (BGRA) channels. Throws InputError otherwise.
std::string encode_png(const cv::Mat& image);
/// Writes the PNG atomically (io/atomic_file.hpp). Throws InputError naming the path when it cannot.
void write_png(const std::string& path, const cv::Mat& image);
/// "data:image/png;base64,..." for embedding in HTML.
std::string png_data_uri(const cv::Mat& image);
/// Standard base64 (RFC 4648, '+' '/', '=' padding, no line breaks).
std::string base64_encode(const std::string& bytes);

}  // namespace attnlens
ATTNLENS_API_END
