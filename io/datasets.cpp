#include "io/datasets.hpp"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "io/image.hpp"
#include "io/json_input.hpp"

namespace attnlens {

namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kIdxImagesMagic = 2051;  // 0x00000803: unsigned bytes, 3 dimensions
constexpr std::uint32_t kIdxLabelsMagic = 2049;  // 0x00000801: unsigned bytes, 1 dimension
// Larger sides are not MNIST-like data and would overflow cv::Mat's int sizes sooner or later.
constexpr std::uint32_t kIdxMaxSide = 16384;
// The most an IDX file may hold once decompressed. The largest MNIST-format sets (EMNIST by_class, 0.55 GB) fit; a
// gzip bomb (1000:1 from a few MB) stops here instead of exhausting memory.
constexpr std::size_t kIdxMaxBytes = std::size_t{1} << 31;

const char* const kSpecHelp =
    "expected canvas, canvas:DIR, a folder of images or of class folders, a folder holding samples.json, or an IDX "
    "images file";

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool starts_with(const std::string& s, const std::string& head) { return s.compare(0, head.size(), head) == 0; }

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

bool is_image_name(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  const auto& known = dataset_image_extensions();
  return std::find(known.begin(), known.end(), ext) != known.end();
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// The non-hidden entries directly inside `dir`, sorted by name (byte order, as Python's sorted()).
std::vector<fs::path> list_dir(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) throw InputError(dir.string() + ": cannot list folder: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (!hidden(it->path())) out.push_back(it->path());
  }
  if (ec) throw InputError(dir.string() + ": cannot list folder: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

// Image files anywhere below `dir` (hidden files and folders skipped), sorted by path: torchvision's ImageFolder
// walks class folders recursively too.
std::vector<fs::path> images_below(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec), end;
  if (ec) throw InputError(dir.string() + ": cannot list folder: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (hidden(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (is_image_name(it->path()) && is_file(it->path())) out.push_back(it->path());
  }
  if (ec) throw InputError(dir.string() + ": cannot list folder: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

// "Ankle_boot" and "ankle boot" are the same class name.
std::string class_key(const std::string& name) {
  std::string k = lower(name);
  std::replace(k.begin(), k.end(), '_', ' ');
  return k;
}

// The whole file, gunzipped when it is gzip (zlib's gzread passes other files through unchanged).
std::vector<unsigned char> read_maybe_gzip(const std::string& path) {
  if (is_dir(path)) throw InputError(path + ": is a folder, not an IDX file");
  errno = 0;
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    throw InputError(path + ": cannot open: " + (errno != 0 ? std::strerror(errno) : "out of memory"));
  }
  std::vector<unsigned char> out;
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    const std::size_t old = out.size();
    if (old > kIdxMaxBytes) {
      gzclose(f);
      throw InputError(path + ": holds more than " + std::to_string(kIdxMaxBytes) +
                       " bytes (decompressed), the limit for IDX files");
    }
    out.resize(old + kChunk);
    const int got = gzread(f, out.data() + old, kChunk);
    if (got < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      gzclose(f);
      throw InputError(path + ": cannot read: " + (code == Z_ERRNO ? std::strerror(errno) : msg));
    }
    out.resize(old + static_cast<std::size_t>(got));
    if (got == 0) break;
  }
  // Z_BUF_ERROR after the last read: the gzip stream stopped in the middle (a cut download).
  int code = 0;
  gzerror(f, &code);
  gzclose(f);
  if (code == Z_BUF_ERROR) throw InputError(path + ": truncated gzip data (the compressed stream ends early)");
  return out;
}

std::uint32_t big_endian32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

std::string magic_text(std::uint32_t magic) {
  switch (magic) {
    case kIdxImagesMagic:
      return "2051 (IDX images)";
    case kIdxLabelsMagic:
      return "2049 (IDX labels)";
    default:
      return std::to_string(magic);
  }
}

// The image file's labels file beside it: "t10k-images-idx3-ubyte.gz" -> "t10k-labels-idx1-ubyte[.gz]". Empty
// when the name does not follow the MNIST pattern or no such file exists.
std::string labels_beside(const fs::path& images) {
  std::string name = images.filename().string();
  if (ends_with(lower(name), ".gz")) name.resize(name.size() - 3);
  const std::string low = lower(name);
  const auto img = low.rfind("images");
  const auto idx = low.rfind("idx3");
  if (img == std::string::npos || idx == std::string::npos) return "";
  name.replace(idx, 4, "idx1");
  name.replace(img, 6, "labels");
  for (const std::string& candidate : {name, name + ".gz"}) {
    const fs::path p = images.parent_path() / candidate;
    if (is_file(p)) return p.string();
  }
  return "";
}

// IDX image files directly in `dir`, the t10k (test) split first, then by name.
std::vector<fs::path> idx_images_in(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const fs::path& p : list_dir(dir)) {
    const std::string low = lower(p.filename().string());
    if ((ends_with(low, "idx3-ubyte") || ends_with(low, "idx3-ubyte.gz")) && is_file(p)) found.push_back(p);
  }
  std::stable_partition(found.begin(), found.end(),
                        [](const fs::path& p) { return starts_with(lower(p.filename().string()), "t10k"); });
  return found;
}

struct IdxImages {
  std::string path;         // the images file
  std::string labels_path;  // empty when there are no labels
  std::size_t count = 0;
  int rows = 0;
  int cols = 0;
  std::vector<unsigned char> bytes;  // the whole images file; pixels from offset 16
  std::vector<unsigned char> labels;

  const unsigned char* pixels(std::size_t i) const {
    return bytes.data() + 16 + i * static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  }
};

// Reads and validates an IDX images file (magic 2051, big-endian count, rows, cols, then count*rows*cols bytes)
// and, when `labels_path` is not empty, its labels file (magic 2049, count, then count bytes).
IdxImages load_idx(const std::string& path, const std::string& labels_path) {
  IdxImages d;
  d.path = path;
  d.labels_path = labels_path;
  d.bytes = read_maybe_gzip(path);
  const auto& b = d.bytes;
  if (b.empty()) throw InputError(path + ": empty file (expected IDX images data)");
  if (b.size() < 4) throw InputError(path + ": too short for an IDX file (" + std::to_string(b.size()) + " bytes)");
  const std::uint32_t magic = big_endian32(b.data());
  if (magic != kIdxImagesMagic) {
    throw InputError(path + ": not an IDX images file (magic number " + magic_text(magic) + ", expected 2051)");
  }
  if (b.size() < 16) throw InputError(path + ": truncated IDX header (" + std::to_string(b.size()) + " of 16 bytes)");
  const std::uint32_t n = big_endian32(b.data() + 4), rows = big_endian32(b.data() + 8),
                      cols = big_endian32(b.data() + 12);
  if (n == 0) throw InputError(path + ": holds no images (count 0)");
  if (rows == 0 || cols == 0 || rows > kIdxMaxSide || cols > kIdxMaxSide) {
    throw InputError(path + ": bad image size " + std::to_string(rows) + "x" + std::to_string(cols) +
                     " in the IDX header (each side must be in [1, " + std::to_string(kIdxMaxSide) + "])");
  }
  // At most 2^32 * 2^28 bytes: no overflow in 64 bits.
  const std::uint64_t need = std::uint64_t{n} * rows * cols;
  const std::uint64_t have = b.size() - 16;
  if (have < need) {
    throw InputError(path + ": truncated IDX data: " + std::to_string(n) + " images of " + std::to_string(rows) + "x" +
                     std::to_string(cols) + " need " + std::to_string(need) + " bytes of pixels, the file holds " +
                     std::to_string(have));
  }
  if (have > need) {
    throw InputError(path + ": " + std::to_string(have - need) + " unexpected bytes after the last of " +
                     std::to_string(n) + " images (not an IDX images file, or a wrong count in its header)");
  }
  d.count = n;
  d.rows = static_cast<int>(rows);
  d.cols = static_cast<int>(cols);

  if (labels_path.empty()) return d;
  d.labels = read_maybe_gzip(labels_path);
  const auto& l = d.labels;
  if (l.empty()) throw InputError(labels_path + ": empty file (expected IDX labels data)");
  if (l.size() < 8) throw InputError(labels_path + ": truncated IDX header (" + std::to_string(l.size()) + " bytes)");
  const std::uint32_t lmagic = big_endian32(l.data());
  if (lmagic != kIdxLabelsMagic) {
    throw InputError(labels_path + ": not an IDX labels file (magic number " + magic_text(lmagic) + ", expected 2049)");
  }
  const std::uint32_t ln = big_endian32(l.data() + 4);
  if (ln != n) {
    throw InputError(labels_path + ": holds " + std::to_string(ln) + " labels but " + path + " holds " +
                     std::to_string(n) + " images");
  }
  if (l.size() - 8 < ln) {
    throw InputError(labels_path + ": truncated IDX data: " + std::to_string(ln) + " labels, the file holds " +
                     std::to_string(l.size() - 8));
  }
  if (l.size() - 8 > ln) {
    throw InputError(labels_path + ": " + std::to_string(l.size() - 8 - ln) + " unexpected bytes after the last of " +
                     std::to_string(ln) + " labels");
  }
  d.labels.erase(d.labels.begin(), d.labels.begin() + 8);
  return d;
}

// samples.json's value `key` of entry `where` as an int; InputError otherwise.
int json_int(const nlohmann::json& v, const std::string& where, const std::string& what) {
  if (!v.is_number_integer()) throw InputError(where + ": " + what + " must be an integer, got " + json_brief(v));
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
      throw InputError(where + ": " + what + " is out of range: " + json_brief(v));
    }
    return static_cast<int>(u);
  }
  const auto s = v.get<std::int64_t>();
  if (s < std::numeric_limits<int>::min() || s > std::numeric_limits<int>::max()) {
    throw InputError(where + ": " + what + " is out of range: " + json_brief(v));
  }
  return static_cast<int>(s);
}

std::string box_text(const Box& b) {
  return "[" + std::to_string(b.x0) + "," + std::to_string(b.y0) + "," + std::to_string(b.x1) + "," +
         std::to_string(b.y1) + "]";
}

}  // namespace

struct ImageDataset::IdxData {
  IdxImages d;
};

// ---- free functions ----

std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Box canvas_offset(std::size_t index) {
  const std::uint64_t h = splitmix64(kCanvasSeed + static_cast<std::uint64_t>(index));
  constexpr std::uint64_t positions = kCanvasSize - kCanvasItem + 1;  // 29
  const int y = static_cast<int>((h & 0xffffffffULL) % positions);
  const int x = static_cast<int>((h >> 32) % positions);
  return Box{x, y, x + kCanvasItem, y + kCanvasItem};
}

std::optional<Box> nonzero_box(const cv::Mat& image) {
  if (image.empty() || image.depth() != CV_8U) return std::nullopt;
  cv::Mat gray;
  if (image.channels() == 1) {
    gray = image;
  } else {
    // Per pixel the maximum over the channels: non-zero iff any channel is.
    std::vector<cv::Mat> planes;
    cv::split(image, planes);
    gray = planes[0].clone();
    for (std::size_t c = 1; c < planes.size(); ++c) cv::max(gray, planes[c], gray);
  }
  std::vector<cv::Point> points;
  cv::findNonZero(gray, points);
  if (points.empty()) return std::nullopt;
  const cv::Rect r = cv::boundingRect(points);
  return Box{r.x, r.y, r.x + r.width, r.y + r.height};
}

const std::vector<std::string>& dataset_image_extensions() {
  static const std::vector<std::string> ext{".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"};
  return ext;
}

// ---- ImageDataset ----

ImageDataset ImageDataset::open(const std::string& spec, const std::vector<std::string>& class_names) {
  if (spec.empty()) throw InputError(std::string("empty data set (") + kSpecHelp + ")");
  ImageDataset ds;

  // canvas / canvas:DIR: the keyword wins over a folder named "canvas" (write ./canvas for that).
  if (spec == "canvas" || starts_with(spec, "canvas:")) {
    const std::string dir = spec == "canvas" ? std::string(kFashionMnistDir) : spec.substr(7);
    if (dir.empty()) throw InputError("canvas: needs a folder after the colon (canvas:DIR), or plain canvas");
    if (!is_dir(dir)) {
      throw InputError(dir +
                       ": no such folder (the canvas set reads the Fashion-MNIST test split from there; "
                       "Debian package dataset-fashion-mnist)");
    }
    std::string images, labels;
    for (const char* name : {"t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"})
      if (images.empty() && is_file(fs::path(dir) / name)) images = (fs::path(dir) / name).string();
    for (const char* name : {"t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte"})
      if (labels.empty() && is_file(fs::path(dir) / name)) labels = (fs::path(dir) / name).string();
    if (images.empty() || labels.empty()) {
      throw InputError(dir + ": no " +
                       (images.empty() ? "t10k-images-idx3-ubyte[.gz]" : "t10k-labels-idx1-ubyte[.gz]") +
                       " (the canvas set needs the Fashion-MNIST test split, images and labels)");
    }
    auto data = std::make_shared<IdxData>(IdxData{load_idx(images, labels)});
    if (data->d.rows != kCanvasItem || data->d.cols != kCanvasItem) {
      throw InputError(images + ": the canvas set needs 28x28 items, this file holds " + std::to_string(data->d.rows) +
                       "x" + std::to_string(data->d.cols));
    }
    ds.kind_ = "canvas";
    ds.source_ = images;
    ds.has_labels_ = true;
    ds.has_boxes_ = true;
    ds.entries_.resize(data->d.count);
    for (std::size_t i = 0; i < data->d.count; ++i) {
      ds.entries_[i].index = i;
      ds.entries_[i].label = data->d.labels[i];
    }
    ds.idx_ = std::move(data);
    return ds;
  }

  std::error_code ec;
  if (!fs::exists(spec, ec)) throw InputError(spec + ": no such file or folder (" + kSpecHelp + ")");
  const fs::path root(spec);

  // samples.json: canvases with boxes.
  fs::path json_path;
  if (is_dir(root) && is_file(root / "samples.json")) json_path = root / "samples.json";
  if (!is_dir(root) && lower(root.extension().string()) == ".json") json_path = root;
  if (!json_path.empty()) {
    const std::string where = json_path.string();
    // Depth-limited, and messages describe values instead of dumping them: a million nested arrays overflowed the
    // stack in nlohmann's recursive dump().
    const nlohmann::json doc = read_json_file(where);
    if (!doc.is_array()) throw InputError(where + ": expected a JSON array of {file, label, box_xyxy} objects");
    if (doc.empty()) throw InputError(where + ": holds no items");
    const fs::path folder = json_path.parent_path();
    for (std::size_t i = 0; i < doc.size(); ++i) {
      const nlohmann::json& e = doc[i];
      std::string at = where + ": entry " + std::to_string(i);
      if (!e.is_object()) throw InputError(at + ": expected an object with file, label and box_xyxy");
      if (!e.contains("file")) throw InputError(at + ": missing \"file\"");
      if (!e["file"].is_string() || e["file"].get<std::string>().empty()) {
        throw InputError(at + ": \"file\" must be a non-empty string, got " + json_brief(e["file"]));
      }
      const std::string file = e["file"].get<std::string>();
      at += " (" + file + ")";
      for (const char* key : {"label", "box_xyxy"})
        if (!e.contains(key)) throw InputError(at + ": missing \"" + key + "\"");
      Entry entry;
      entry.index = i;
      entry.path = (folder / file).string();
      entry.label = json_int(e["label"], at, "\"label\"");
      if (entry.label < 0) throw InputError(at + ": \"label\" must be >= 0, got " + json_brief(e["label"]));
      const nlohmann::json& b = e["box_xyxy"];
      if (!b.is_array() || b.size() != 4) {
        throw InputError(at + ": \"box_xyxy\" must be [x0, y0, x1, y1], got " + json_brief(b));
      }
      Box box{json_int(b[0], at, "\"box_xyxy\""), json_int(b[1], at, "\"box_xyxy\""),
              json_int(b[2], at, "\"box_xyxy\""), json_int(b[3], at, "\"box_xyxy\"")};
      if (box.x0 < 0 || box.y0 < 0 || box.x1 <= box.x0 || box.y1 <= box.y0) {
        throw InputError(at + ": \"box_xyxy\" " + box_text(box) +
                         " is not a box (need 0 <= x0 < x1 and 0 <= y0 < y1; x1, y1 exclusive)");
      }
      entry.box = box;
      if (!is_file(entry.path)) throw InputError(at + ": no such image file " + entry.path);
      ds.entries_.push_back(std::move(entry));
    }
    ds.kind_ = "boxes";
    ds.source_ = where;
    ds.has_labels_ = true;
    ds.has_boxes_ = true;
    return ds;
  }

  // IDX: a file, or a folder holding *-images-idx3-ubyte[.gz].
  std::string idx_file;
  if (!is_dir(root)) {
    if (is_image_name(root)) {
      throw InputError(spec + ": a single image, not a data set (give the folder that holds it)");
    }
    idx_file = root.string();
  } else {
    const auto found = idx_images_in(root);
    if (!found.empty()) idx_file = found.front().string();
  }
  if (!idx_file.empty()) {
    auto data = std::make_shared<IdxData>(IdxData{load_idx(idx_file, labels_beside(idx_file))});
    ds.kind_ = "idx";
    ds.source_ = idx_file;
    ds.has_labels_ = !data->d.labels.empty();
    ds.entries_.resize(data->d.count);
    for (std::size_t i = 0; i < data->d.count; ++i) {
      ds.entries_[i].index = i;
      if (ds.has_labels_) ds.entries_[i].label = data->d.labels[i];
    }
    ds.idx_ = std::move(data);
    return ds;
  }

  // Class folders: sub-folders that hold images.
  std::vector<std::pair<std::string, std::vector<fs::path>>> classes;  // sorted by folder name
  std::vector<fs::path> loose;
  for (const fs::path& p : list_dir(root)) {
    if (is_dir(p)) {
      auto images = images_below(p);
      if (!images.empty()) classes.emplace_back(p.filename().string(), std::move(images));
    } else if (is_image_name(p) && is_file(p)) {
      loose.push_back(p);
    }
  }
  if (!classes.empty()) {
    std::vector<int> labels(classes.size(), -1);
    // 1. every name is one of the model's class names
    bool by_name = !class_names.empty();
    if (by_name) {
      std::map<std::string, int> index;
      for (std::size_t c = 0; c < class_names.size(); ++c)
        index.emplace(class_key(class_names[c]), static_cast<int>(c));
      for (std::size_t k = 0; k < classes.size() && by_name; ++k) {
        const auto it = index.find(class_key(classes[k].first));
        if (it == index.end())
          by_name = false;
        else
          labels[k] = it->second;
      }
    }
    // 2. every name is a class index; 3. position among the sorted names
    if (!by_name) {
      bool by_number = true;
      for (std::size_t k = 0; k < classes.size() && by_number; ++k)
        by_number = parse_decimal(classes[k].first, labels[k]);
      if (!by_number)
        for (std::size_t k = 0; k < classes.size(); ++k) labels[k] = static_cast<int>(k);
    }
    if (!class_names.empty()) {
      for (std::size_t k = 0; k < classes.size(); ++k) {
        if (labels[k] >= static_cast<int>(class_names.size())) {
          throw InputError(spec + ": class folder '" + classes[k].first + "' is class " + std::to_string(labels[k]) +
                           " but the model has " + std::to_string(class_names.size()) + " classes");
        }
      }
    }
    for (std::size_t k = 0; k < classes.size(); ++k) {
      for (const fs::path& p : classes[k].second) {
        Entry entry;
        entry.path = p.string();
        entry.label = labels[k];
        entry.index = ds.entries_.size();
        ds.entries_.push_back(std::move(entry));
      }
    }
    ds.kind_ = "class-folders";
    ds.source_ = spec;
    ds.has_labels_ = true;
    return ds;
  }

  if (loose.empty()) {
    std::string ext;
    for (const auto& e : dataset_image_extensions()) ext += (ext.empty() ? "" : " ") + e;
    throw InputError(spec + ": no images found (looked for " + ext +
                     " directly inside and in its sub-folders, and for samples.json and IDX files)");
  }
  for (const fs::path& p : loose) {
    Entry entry;
    entry.path = p.string();
    entry.index = ds.entries_.size();
    ds.entries_.push_back(std::move(entry));
  }
  ds.kind_ = "image-folder";
  ds.source_ = spec;
  return ds;
}

std::size_t ImageDataset::size() const { return entries_.size(); }

const std::string& ImageDataset::kind() const { return kind_; }

bool ImageDataset::has_labels() const { return has_labels_; }

bool ImageDataset::has_boxes() const { return has_boxes_; }

DatasetItem ImageDataset::get(std::size_t i) const {
  if (i >= entries_.size()) {
    throw std::out_of_range("ImageDataset::get: item " + std::to_string(i) + " of " + std::to_string(entries_.size()));
  }
  const Entry& e = entries_[i];
  DatasetItem item;
  item.label = e.label;

  if (idx_) {
    const IdxImages& d = idx_->d;
    // The IDX buffer is shared and never written: the Mat header only reads it, cvtColor copies.
    const cv::Mat gray(d.rows, d.cols, CV_8UC1, const_cast<unsigned char*>(d.pixels(e.index)));
    if (kind_ == "canvas") {
      const Box at = canvas_offset(e.index);
      cv::Mat canvas = cv::Mat::zeros(kCanvasSize, kCanvasSize, CV_8UC1);
      gray.copyTo(canvas(cv::Rect(at.x0, at.y0, kCanvasItem, kCanvasItem)));
      cv::cvtColor(canvas, item.rgb, cv::COLOR_GRAY2RGB);
      item.box = nonzero_box(canvas).value_or(at);  // a blank item: the whole pasted area
      item.id = "canvas:" + std::to_string(e.index);
    } else {
      cv::cvtColor(gray, item.rgb, cv::COLOR_GRAY2RGB);
      item.id = "idx:" + std::to_string(e.index);
    }
    return item;
  }

  item.id = e.path;
  item.rgb = read_image_rgb(e.path);
  if (e.box) {
    const Box& b = *e.box;
    if (b.x1 > item.rgb.cols || b.y1 > item.rgb.rows) {
      throw InputError(source_ + ": entry " + std::to_string(e.index) + " (" + e.path + "): box_xyxy " + box_text(b) +
                       " lies outside the " + std::to_string(item.rgb.cols) + "x" + std::to_string(item.rgb.rows) +
                       " (WxH) image");
    }
    item.box = b;
  }
  return item;
}

void ImageDataset::select(std::size_t limit, bool shuffle, std::uint64_t seed) {
  if (shuffle && entries_.size() > 1) {
    std::mt19937_64 rng(seed);
    // Plain modulo rather than std::uniform_int_distribution, whose algorithm differs between standard libraries
    // (the bias of a 64-bit modulo is below 2^-40 for any real data set).
    for (std::size_t i = entries_.size() - 1; i > 0; --i) {
      const std::size_t j = static_cast<std::size_t>(rng() % (static_cast<std::uint64_t>(i) + 1));
      std::swap(entries_[i], entries_[j]);
    }
  }
  if (limit != 0 && limit < entries_.size()) entries_.resize(limit);
}

}  // namespace attnlens
