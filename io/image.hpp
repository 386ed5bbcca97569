// Images in: decoding, and the resize / center-crop / normalise pipelines of the reference ViT-family models
// (spec section 9), producing the [3,H,W] input tensor as a plain Array (no LibTorch at this layer).
//
// Not bit-exact with torchvision/PIL, and not attempted: PIL resamples with an antialiased convolution (its filter
// widens with the shrink factor; bicubic a = -0.5) while OpenCV's INTER_CUBIC samples a fixed 4x4 neighbourhood with
// a = -0.75. Measured on a photo against PIL bicubic (mean / max absolute difference in 8-bit levels, sizes WxH):
// 300x200 -> 372x248 (upscaling) 0.65 / 16; 512x600 -> 248x290 (a camera-to-model shrink is often larger still)
// 3.4 / 88 with "bicubic", 0.9 / 27 with "area". Overlays hardly change; model outputs can differ a little from the
// reference's. Reproducing a reference's numbers exactly means feeding its own tensor (load_preprocessed_npy).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "../core/api.hpp"
#include "../core/array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Default bound on the pixels of a decoded image and of the image preprocess() makes from it: 2^25 (about 33.5
/// million, e.g. 8192x4096). A 196-byte PNG can declare 40,000 pixels that a shorter-side resize to 224 turns into
/// 2 billion (48 GB of tensor); the bound turns that into an error naming --max-image-pixels.
inline constexpr std::int64_t kDefaultMaxImagePixels = std::int64_t{1} << 25;

/// The bound read_image_rgb and preprocess apply (process-wide, like OpenCV's own OPENCV_IO_MAX_IMAGE_PIXELS, so
/// that every reader of images honours the command line's --max-image-pixels). InputError unless pixels >= 1.
void set_max_image_pixels(std::int64_t pixels);
std::int64_t max_image_pixels();
/// Throws InputError "<what>: WxH image (N pixels) exceeds the limit of M pixels (--max-image-pixels raises it)"
/// when width * height is over max_image_pixels().
void check_image_pixels(std::int64_t width, std::int64_t height, const std::string& what);

/// Decodes any format OpenCV reads (PNG, JPEG, BMP, TIFF, WebP, ...) into 8-bit RGB (CV_8UC3, RGB order).
/// Gray becomes 3 equal channels, alpha is dropped (not composited, as PIL's convert("RGB")), 16-bit is scaled by
/// 255/65535 with rounding, float images are taken as [0,1]. EXIF orientation is ignored, as PIL's Image.open does.
/// Throws InputError naming the file when it is missing, unreadable or not a decodable image, and when its size
/// (read from the header for PNG, JPEG, BMP and WebP, before anything is decoded) exceeds max_image_pixels().
cv::Mat read_image_rgb(const std::string& path);

enum class ResizeMode {
  none,          ///< keep the decoded size
  shorter_side,  ///< torchvision Resize(S): shorter side to S, longer side int(S * long / short), aspect kept
  exact,         ///< Resize((H, W)): aspect not kept
};

enum class Interpolation { bicubic, bilinear, nearest, area };

/// One preprocessing pipeline: resize, then optional center crop, then (x/255 - mean) / std per channel (RGB).
/// A default-constructed one keeps the size and normalises with mean = std = 0.5.
struct Preprocess {
  ResizeMode resize = ResizeMode::none;
  int resize_shorter = 0;  ///< S for ResizeMode::shorter_side
  int resize_height = 0;   ///< for ResizeMode::exact
  int resize_width = 0;
  Interpolation interpolation = Interpolation::bicubic;
  int crop_height = 0;  ///< 0 = no crop
  int crop_width = 0;
  std::array<double, 3> mean{0.5, 0.5, 0.5};
  std::array<double, 3> std{0.5, 0.5, 0.5};
};

/// ImageNet statistics (torchvision / timm IMAGENET_DEFAULT_MEAN, _STD).
inline constexpr std::array<double, 3> kImageNetMean{0.485, 0.456, 0.406};
inline constexpr std::array<double, 3> kImageNetStd{0.229, 0.224, 0.225};
/// OpenAI CLIP's statistics (clip/clip.py _transform; open_clip OPENAI_DATASET_MEAN, _STD).
inline constexpr std::array<double, 3> kClipMean{0.48145466, 0.4578275, 0.40821073};
inline constexpr std::array<double, 3> kClipStd{0.26862954, 0.26130258, 0.27577711};

/// Names accepted by preprocess_preset, in a fixed order (for --help and error messages).
const std::vector<std::string>& preprocess_preset_names();

/// The reference pipelines of spec section 9, for a square model input of `input_size` pixels (224 gives the
/// published values):
///   timm-deit    shorter side floor(size/0.9) (248), bicubic, crop size, ImageNet mean/std
///   timm-vit     shorter side floor(size/0.9) (248), bicubic, crop size, mean = std = 0.5
///   hf           exact size x size, bilinear, no crop, mean = std = 0.5 (HF ViTImageProcessor)
///   dino         shorter side floor(size*256/224) (256), bicubic, crop size, ImageNet mean/std
///   clip         shorter side size (224), bicubic, crop size, CLIP mean/std (OpenAI CLIP, open_clip, HF CLIP)
///   vit-explain  exact size x size, bicubic, no crop, mean = std = 0.5 (jacobgil/vit-explain, also for DeiT)
/// Throws InputError for an unknown name (listing the known ones) or a size outside [1, 8192].
Preprocess preprocess_preset(const std::string& name, int input_size = 224);

/// --resize: "S" (shorter side to S), "HxW" (exact) or "none". Throws InputError for anything else.
void parse_resize(const std::string& text, Preprocess& p);
/// --crop: "S" (S x S), "HxW" or "none" (no crop). Throws InputError for anything else.
void parse_crop(const std::string& text, Preprocess& p);
/// --interpolation: bicubic | bilinear | nearest | area.
Interpolation parse_interpolation(const std::string& text);
/// --mean / --std: "a,b,c" (R,G,B) or a single value for all three. `what` names the option in messages.
/// Every value must be finite; with positive = true (std) also > 0.
std::array<double, 3> parse_channel_values(const std::string& text, const std::string& what, bool positive);

/// torchvision CenterCrop's offset along one axis: int(round((size - crop) / 2)) with Python's round-half-even,
/// e.g. (249, 224) -> 12, (251, 224) -> 14. Requires size >= crop.
int center_crop_offset(int size, int crop);

/// Strict non-negative decimal integer of at most 9 digits, so it fits an int: "248", "007" yes; "", "+3", "-1",
/// "248px" and "1e3" no. For sizes in options and numbered class folders.
bool parse_decimal(const std::string& text, int& out);

struct PreprocessedImage {
  Array tensor;  ///< [3,H,W], RGB planes, (x/255 - mean)/std computed in float32 as torchvision does
  cv::Mat rgb;   ///< the resized and cropped 8-bit RGB image the tensor came from, for overlays
};

/// Runs `p` on an 8-bit RGB image (CV_8UC3). A crop larger than the image pads with black first, centred, as
/// torchvision's CenterCrop does. Throws InputError for an empty or non-8UC3 image, a non-positive size, or a
/// resized or padded image over max_image_pixels() (checked before it is allocated).
PreprocessedImage preprocess(const cv::Mat& rgb, const Preprocess& p);

/// A user's own preprocessed input: a .npy of shape [3,H,W] (or [1,3,H,W]); values must be finite. With
/// height/width > 0 the spatial size must match them. Throws InputError naming the file otherwise.
Array load_preprocessed_npy(const std::string& path, int height = 0, int width = 0);

}  // namespace attnlens
ATTNLENS_API_END
