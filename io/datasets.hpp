// Image data sets for the batch subcommands: the generated Fashion-MNIST canvas set the bundled fmnist-vit model
// is scored on, a folder of canvases with boxes (samples.json), MNIST-format IDX files, and folders of images
// (torchvision ImageFolder / ImageNet / Imagenette layout, or a flat folder). Items decode lazily one at a time,
// so a folder of 50,000 JPEGs costs only its file list until it is read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"  // InputError

ATTNLENS_API_BEGIN
namespace attnlens {

/// An object's box in pixels of the item's own image, exclusive upper bounds (x1, y1), as numpy slicing.
struct Box {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

struct DatasetItem {
  std::string id;          ///< file path, or "canvas:17" / "idx:17" for generated/IDX items
  cv::Mat rgb;             ///< 8-bit RGB (CV_8UC3, RGB order), the item's own size
  int label = -1;          ///< class index; -1 when the data set has no labels (the predicted class is used)
  std::optional<Box> box;  ///< where the object is, when the data set says
};

/// Where the canvas set's Fashion-MNIST test split is read from by default (Debian package dataset-fashion-mnist).
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int kCanvasSize = 56;  ///< the canvas set's images are kCanvasSize x kCanvasSize
inline constexpr int kCanvasItem = 28;  ///< the pasted Fashion-MNIST item is kCanvasItem x kCanvasItem
inline constexpr std::uint64_t kCanvasSeed = 12345;

/// The standard splitmix64 finaliser of z + 0x9e3779b97f4a7c15 (Steele, Lea & Flood 2014; Java's
/// SplittableRandom): used as a counter-based generator, so item i's placement needs no state and any language
/// reproduces it in four lines.
std::uint64_t splitmix64(std::uint64_t z);

/// Where canvas item `index` is pasted: h = splitmix64(kCanvasSeed + index), y = (h & 0xffffffff) % 29,
/// x = (h >> 32) % 29 (each in [0, 28]); returned as the pasted 28x28 area {x, y, x + 28, y + 28}.
/// (Not the numpy generator tools/train_fmnist_vit.py scores with: that one is not reproducible outside numpy.)
Box canvas_offset(std::size_t index);

/// The tight box of the non-zero pixels of an 8-bit image (any channel count; a pixel counts when any channel is
/// non-zero), exclusive upper bounds; std::nullopt when every pixel is zero.
std::optional<Box> nonzero_box(const cv::Mat& image);

/// The image file extensions folders are searched for, lower case with the dot (".png", ".jpg", ...); matching is
/// case-insensitive.
const std::vector<std::string>& dataset_image_extensions();

class ImageDataset {
 public:
  /// Opens a data set. `spec` is one of
  ///   canvas, canvas:DIR  the Fashion-MNIST test split (DIR/t10k-images-idx3-ubyte[.gz] and t10k-labels-...; DIR
  ///                       defaults to kFashionMnistDir), each 28x28 item pasted on a black 56x56 canvas at
  ///                       canvas_offset(i); box = nonzero_box of the item on the canvas, or the whole pasted area
  ///                       when the item is blank. ids "canvas:i". Kind "canvas".
  ///   a folder holding samples.json (or the path of such a .json file): a JSON array of {"file": relative path,
  ///                       "label": int >= 0, "box_xyxy": [x0, y0, x1, y1]} (other keys ignored), as
  ///                       data/models/fmnist-vit/samples. Kind "boxes"; ids are the image paths.
  ///   an IDX images file  *-images-idx3-ubyte[.gz] (MNIST format, gzip or raw), labels from the matching
  ///                       *-labels-idx1-ubyte[.gz] beside it when present; or a folder holding such files (the
  ///                       t10k-* one when there are several, else the first by name). Kind "idx", ids "idx:i".
  ///   a folder of class folders  sub-folders holding images (searched recursively, sorted by path). Label of a
  ///                       sub-folder: its index in `class_names` when every sub-folder name matches one
  ///                       (case-insensitive, '_' == ' '; the first match wins for repeated names); else, when every
  ///                       name is a non-negative integer, that integer; else its position among the sorted
  ///                       sub-folder names (torchvision's ImageFolder rule; ImageNet's wnid folders sort into the
  ///                       standard class order). Kind "class-folders".
  ///   a folder of images  no sub-folder holds images: every image directly inside, sorted by name, label -1.
  ///                       Kind "image-folder".
  /// The spec is tried in that order (so a folder with samples.json or IDX files is never read as image folders).
  /// Names starting with '.' are skipped; sub-folders without images are not classes; loose images beside class
  /// folders are ignored. With a non-empty `class_names`, every folder label must be < class_names.size().
  /// Throws InputError naming the path for a missing path, a folder with no images, bad JSON or IDX data, ...
  static ImageDataset open(const std::string& spec, const std::vector<std::string>& class_names = {});

  std::size_t size() const;
  /// Decodes item i (lazily: folders hold paths; IDX/canvas hold the decoded uint8 arrays). InputError naming the
  /// file when it cannot be read, or (boxes) when the box does not lie inside the image. i must be < size()
  /// (std::out_of_range otherwise).
  DatasetItem get(std::size_t i) const;
  const std::string& kind() const;  ///< "canvas", "boxes", "idx", "class-folders", "image-folder"
  bool has_labels() const;
  bool has_boxes() const;
  /// Keeps a subset: with shuffle, a Fisher-Yates shuffle driven by std::mt19937_64(seed) first; then the first
  /// `limit` items (0 = all). Deterministic for a given seed, in any language: for i = n-1 down to 1,
  /// j = mt19937_64() % (i + 1), swap items i and j. Calling it again works on the subset already kept.
  void select(std::size_t limit, bool shuffle, std::uint64_t seed);

 private:
  struct IdxData;  ///< the decoded IDX images (and labels), shared by the copies of an "idx" or "canvas" data set
  struct Entry {
    std::string path;       ///< image file (folders, boxes); empty for IDX/canvas items
    std::size_t index = 0;  ///< item number in the whole data set (IDX/canvas ids)
    int label = -1;
    std::optional<Box> box;  ///< boxes: from samples.json, checked against the image when decoded
  };

  std::string kind_;
  std::string source_;  ///< the file that is named in decode errors (samples.json, the IDX file)
  bool has_labels_ = false;
  bool has_boxes_ = false;
  std::vector<Entry> entries_;
  std::shared_ptr<const IdxData> idx_;
};

}  // namespace attnlens
ATTNLENS_API_END
