#include "io/image.hpp"

#include <algorithm>
#include <atomic>
#include <optional>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "io/npy.hpp"

namespace attnlens {

namespace {

std::string size_text(int h, int w) { return std::to_string(h) + "x" + std::to_string(w); }

// "S" -> (S, S, single=true); "HxW" -> (H, W, single=false). Sizes in [1, 65536].
bool parse_size(const std::string& text, int& h, int& w, bool& single) {
  const auto x = text.find_first_of("xX");
  if (x == std::string::npos) {
    single = true;
    if (!parse_decimal(text, h)) return false;
    w = h;
  } else {
    single = false;
    if (!parse_decimal(text.substr(0, x), h) || !parse_decimal(text.substr(x + 1), w)) return false;
  }
  return h >= 1 && w >= 1 && h <= 65536 && w <= 65536;
}

bool parse_double(const std::string& s, double& out) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s.front()))) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return errno == 0 && end == s.c_str() + s.size() && std::isfinite(out);
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

int cv_interpolation(Interpolation i) {
  switch (i) {
    case Interpolation::bicubic: return cv::INTER_CUBIC;
    case Interpolation::bilinear: return cv::INTER_LINEAR;
    // Pixel-centre nearest (PIL, skimage); plain INTER_NEAREST keeps OpenCV's legacy top-left rounding.
    case Interpolation::nearest: return cv::INTER_NEAREST_EXACT;
    case Interpolation::area: return cv::INTER_AREA;
  }
  return cv::INTER_LINEAR;
}

// Python's round() on x.0 / x.5 values: ties go to the even neighbour.
int round_half_even_of_half(int twice) {
  const int q = twice / 2;  // twice >= 0
  if (twice % 2 == 0) return q;
  return (q % 2 == 0) ? q : q + 1;
}

std::atomic<std::int64_t> g_max_image_pixels{kDefaultMaxImagePixels};

std::uint32_t byte_at(const std::string& b, std::size_t at) { return static_cast<unsigned char>(b[at]); }
std::uint32_t be32(const std::string& b, std::size_t at) {
  return byte_at(b, at) << 24 | byte_at(b, at + 1) << 16 | byte_at(b, at + 2) << 8 | byte_at(b, at + 3);
}
std::uint32_t be16(const std::string& b, std::size_t at) { return byte_at(b, at) << 8 | byte_at(b, at + 1); }
std::uint32_t le_n(const std::string& b, std::size_t at, int n) {
  std::uint32_t v = 0;
  for (int i = 0; i < n; ++i) v |= std::uint32_t{static_cast<unsigned char>(b[at + i])} << (8 * i);
  return v;
}

struct Extent {
  std::int64_t width = 0, height = 0;
};

// The size an image file declares, read from its header without decoding (PNG IHDR, JPEG SOFn, BMP info header,
// WebP VP8/VP8L/VP8X), so that a huge declared size fails before the decoder allocates for it. nullopt when the
// format is another one or the header is too short to tell (the decoder then decides, and the decoded size is
// checked afterwards).
std::optional<Extent> declared_extent(const std::string& b) {
  const auto starts = [&](const char* magic, std::size_t n) { return b.size() >= n && b.compare(0, n, magic, n) == 0; };
  if (starts("\x89PNG\r\n\x1a\n", 8)) {
    if (b.size() < 24 || b.compare(12, 4, "IHDR") != 0) return std::nullopt;
    return Extent{be32(b, 16), be32(b, 20)};
  }
  if (starts("\xff\xd8", 2)) {
    std::size_t p = 2;
    while (p + 4 <= b.size()) {
      if (static_cast<unsigned char>(b[p]) != 0xff) return std::nullopt;
      const unsigned marker = static_cast<unsigned char>(b[p + 1]);
      if (marker == 0xff) {  // fill byte
        ++p;
        continue;
      }
      if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {  // no length field
        p += 2;
        continue;
      }
      const std::size_t length = be16(b, p + 2);
      if (length < 2) return std::nullopt;
      const bool sof = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
      if (sof) {
        if (p + 9 > b.size()) return std::nullopt;
        return Extent{be16(b, p + 7), be16(b, p + 5)};
      }
      if (marker == 0xda || marker == 0xd9) return std::nullopt;  // scan data before any frame header
      p += 2 + length;
    }
    return std::nullopt;
  }
  if (starts("BM", 2)) {
    if (b.size() < 26) return std::nullopt;
    const std::uint32_t info = le_n(b, 14, 4);
    if (info == 12) return Extent{le_n(b, 18, 2), le_n(b, 20, 2)};
    // Signed 32-bit extents; a negative height means top-down rows.
    const auto w = static_cast<std::int32_t>(le_n(b, 18, 4)), h = static_cast<std::int32_t>(le_n(b, 22, 4));
    return Extent{std::llabs(static_cast<long long>(w)), std::llabs(static_cast<long long>(h))};
  }
  if (b.size() >= 30 && starts("RIFF", 4) && b.compare(8, 4, "WEBP") == 0) {
    if (b.compare(12, 4, "VP8X") == 0)
      return Extent{std::int64_t{le_n(b, 24, 3)} + 1, std::int64_t{le_n(b, 27, 3)} + 1};
    if (b.compare(12, 4, "VP8L") == 0) {
      const std::uint32_t bits = le_n(b, 21, 4);
      return Extent{std::int64_t{bits & 0x3fff} + 1, std::int64_t{(bits >> 14) & 0x3fff} + 1};
    }
    if (b.compare(12, 4, "VP8 ") == 0) return Extent{le_n(b, 26, 2) & 0x3fff, le_n(b, 28, 2) & 0x3fff};
  }
  return std::nullopt;
}

}  // namespace

void set_max_image_pixels(std::int64_t pixels) {
  if (pixels < 1) throw InputError("--max-image-pixels must be at least 1, got " + std::to_string(pixels));
  g_max_image_pixels = pixels;
}

std::int64_t max_image_pixels() { return g_max_image_pixels; }

void check_image_pixels(std::int64_t width, std::int64_t height, const std::string& what) {
  const std::int64_t limit = max_image_pixels();
  // Compared by division: a header's two 32-bit extents can multiply past 2^63 (fuzzing finding).
  if (width <= 0 || height <= 0 || width <= limit / height) return;
  const auto w = static_cast<std::uint64_t>(width), h = static_cast<std::uint64_t>(height);
  const std::string pixels = w <= UINT64_MAX / h ? std::to_string(w * h) : "over 2^64";
  throw InputError(what + ": " + std::to_string(width) + "x" + std::to_string(height) + " (WxH) image (" + pixels +
                   " pixels) exceeds the limit of " + std::to_string(limit) + " pixels (--max-image-pixels raises it)");
}

namespace {

// libjpeg decodes a truncated JPEG with the missing part grey and only a warning on stderr, and libpng prints its own
// error line before OpenCV fails: both would break "a clear error, exit 2, nothing written". So a PNG must end with
// its IEND chunk and a JPEG with its end-of-image marker (trailing padding after it is allowed, as decoders do).
void check_complete(const std::string& bytes, const std::string& path) {
  auto starts = [&](const char* magic, size_t n) { return bytes.size() >= n && bytes.compare(0, n, magic, n) == 0; };
  if (starts("\x89PNG\r\n\x1a\n", 8)) {
    static const char iend[] = {'I', 'E', 'N', 'D', '\xae', 'B', '`', '\x82'};
    if (bytes.size() < 20 || bytes.compare(bytes.size() - 8, 8, iend, 8) != 0)
      throw InputError(path + ": truncated or corrupt PNG (no IEND chunk at the end)");
  } else if (starts("\xff\xd8\xff", 3)) {
    size_t end = bytes.size();
    while (end > 4 && bytes[end - 1] == '\0') --end;  // zero padding some writers add after the marker
    if (end < 4 || bytes.compare(end - 2, 2, "\xff\xd9", 2) != 0)
      throw InputError(path + ": truncated or corrupt JPEG (no end-of-image marker)");
  }
}

}  // namespace

cv::Mat read_image_rgb(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw InputError(path + ": no such file");
  if (std::filesystem::is_directory(path, ec)) throw InputError(path + ": is a directory, not an image");
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path + ": cannot open: " + std::strerror(errno));
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  check_complete(bytes, path);
  if (const auto declared = declared_extent(bytes)) check_image_pixels(declared->width, declared->height, path);

  cv::Mat raw;
  try {
    raw = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, bytes.data()), cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw InputError(path + ": cannot decode image: " + e.what());
  }
  if (raw.empty()) throw InputError(path + ": not a readable image (unknown format or corrupt data)");
  check_image_pixels(raw.cols, raw.rows, path);

  cv::Mat u8;
  switch (raw.depth()) {
    case CV_8U: u8 = raw; break;
    // 65535 -> 255 exactly, with rounding in between (a plain >> 8 would darken by up to one level).
    case CV_16U: raw.convertTo(u8, CV_8U, 255.0 / 65535.0); break;
    case CV_32F:
    case CV_64F: raw.convertTo(u8, CV_8U, 255.0); break;  // float images are [0,1] by convention; saturates
    default:
      throw InputError(path + ": unsupported pixel type (only 8-bit, 16-bit unsigned and float images)");
  }

  cv::Mat rgb;
  switch (u8.channels()) {
    case 1: cv::cvtColor(u8, rgb, cv::COLOR_GRAY2RGB); break;
    case 2: {  // gray + alpha: keep the gray plane
      cv::Mat gray;
      cv::extractChannel(u8, gray, 0);
      cv::cvtColor(gray, rgb, cv::COLOR_GRAY2RGB);
      break;
    }
    case 3: cv::cvtColor(u8, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(u8, rgb, cv::COLOR_BGRA2RGB); break;
    default: throw InputError(path + ": unsupported channel count " + std::to_string(u8.channels()));
  }
  return rgb;
}

const std::vector<std::string>& preprocess_preset_names() {
  static const std::vector<std::string> names{"timm-deit", "timm-vit", "hf", "dino", "clip", "vit-explain"};
  return names;
}

Preprocess preprocess_preset(const std::string& name, int input_size) {
  if (input_size < 1 || input_size > 8192)
    throw InputError("model input size must be in [1, 8192], got " + std::to_string(input_size));
  Preprocess p;
  p.crop_height = p.crop_width = input_size;
  if (name == "timm-deit" || name == "timm-vit") {
    p.resize = ResizeMode::shorter_side;
    // timm's math.floor(img_size / crop_pct) in double, kept literally so odd sizes round as timm does.
    p.resize_shorter = static_cast<int>(std::floor(input_size / 0.9));
    p.interpolation = Interpolation::bicubic;
    if (name == "timm-deit") {
      p.mean = kImageNetMean;
      p.std = kImageNetStd;
    }
  } else if (name == "dino") {
    p.resize = ResizeMode::shorter_side;
    p.resize_shorter = input_size * 256 / 224;
    p.interpolation = Interpolation::bicubic;
    p.mean = kImageNetMean;
    p.std = kImageNetStd;
  } else if (name == "clip") {
    p.resize = ResizeMode::shorter_side;
    p.resize_shorter = input_size;
    p.interpolation = Interpolation::bicubic;
    p.mean = kClipMean;
    p.std = kClipStd;
  } else if (name == "hf" || name == "vit-explain") {
    p.resize = ResizeMode::exact;
    p.resize_height = p.resize_width = input_size;
    p.interpolation = name == "hf" ? Interpolation::bilinear : Interpolation::bicubic;
    p.crop_height = p.crop_width = 0;
  } else {
    std::string known;
    for (const auto& n : preprocess_preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw InputError("unknown preprocessing preset '" + name + "' (known: " + known + ")");
  }
  return p;
}

void parse_resize(const std::string& text, Preprocess& p) {
  if (text == "none") {
    p.resize = ResizeMode::none;
    return;
  }
  int h = 0, w = 0;
  bool single = false;
  if (!parse_size(text, h, w, single))
    throw InputError("--resize must be S (shorter side), HxW (exact) or none, got '" + text + "'");
  if (single) {
    p.resize = ResizeMode::shorter_side;
    p.resize_shorter = h;
  } else {
    p.resize = ResizeMode::exact;
    p.resize_height = h;
    p.resize_width = w;
  }
}

void parse_crop(const std::string& text, Preprocess& p) {
  if (text == "none") {
    p.crop_height = p.crop_width = 0;
    return;
  }
  int h = 0, w = 0;
  bool single = false;
  if (!parse_size(text, h, w, single))
    throw InputError("--crop must be S (S x S), HxW or none, got '" + text + "'");
  p.crop_height = h;
  p.crop_width = w;
}

Interpolation parse_interpolation(const std::string& text) {
  if (text == "bicubic") return Interpolation::bicubic;
  if (text == "bilinear") return Interpolation::bilinear;
  if (text == "nearest") return Interpolation::nearest;
  if (text == "area") return Interpolation::area;
  throw InputError("--interpolation must be bicubic, bilinear, nearest or area, got '" + text + "'");
}

std::array<double, 3> parse_channel_values(const std::string& text, const std::string& what, bool positive) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    parts.push_back(trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  const std::string expect = what + " must be three comma-separated numbers (R,G,B) or one number";
  if (parts.size() != 1 && parts.size() != 3) throw InputError(expect + ", got '" + text + "'");
  std::array<double, 3> v{};
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string& s = parts[parts.size() == 1 ? 0 : i];
    if (!parse_double(s, v[i])) throw InputError(expect + ", got '" + text + "'");
    if (positive && !(v[i] > 0)) throw InputError(what + " values must be > 0, got '" + text + "'");
  }
  return v;
}

bool parse_decimal(const std::string& s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  out = std::stoi(s);
  return true;
}

int center_crop_offset(int size, int crop) {
  if (crop > size) throw InputError("crop " + std::to_string(crop) + " is larger than " + std::to_string(size));
  return round_half_even_of_half(size - crop);
}

PreprocessedImage preprocess(const cv::Mat& rgb, const Preprocess& p) {
  if (rgb.empty()) throw InputError("preprocess: empty image");
  if (rgb.type() != CV_8UC3) throw InputError("preprocess: expected an 8-bit 3-channel RGB image");
  for (double s : p.std)
    if (!(s > 0) || !std::isfinite(s)) throw InputError("preprocess: std values must be finite and > 0");
  for (double m : p.mean)
    if (!std::isfinite(m)) throw InputError("preprocess: mean values must be finite");

  const int h = rgb.rows, w = rgb.cols;
  int th = h, tw = w;
  if (p.resize == ResizeMode::shorter_side) {
    if (p.resize_shorter < 1) throw InputError("preprocess: resize size must be positive");
    const bool portrait = w <= h;
    const std::int64_t shorter = portrait ? w : h, longer = portrait ? h : w;
    // torchvision: int(S * long / short), i.e. a true (double) division then truncation.
    const double new_long =
        std::floor(static_cast<double>(p.resize_shorter * longer) / static_cast<double>(shorter));
    if (new_long < 1) throw InputError("preprocess: resizing " + size_text(h, w) + " gives an empty image");
    // Checked in double before the cast: a 1x40000 image resized to 224 asks for 224 x 8,960,000 pixels, and a
    // long side beyond int's range would make the cast undefined.
    if (new_long * p.resize_shorter > static_cast<double>(max_image_pixels()))
      check_image_pixels(portrait ? p.resize_shorter : static_cast<std::int64_t>(std::min(new_long, 4294967296.0)),
                         portrait ? static_cast<std::int64_t>(std::min(new_long, 4294967296.0)) : p.resize_shorter,
                         "preprocess: resizing " + size_text(h, w) + " (HxW) to shorter side " +
                             std::to_string(p.resize_shorter));
    th = portrait ? static_cast<int>(new_long) : p.resize_shorter;
    tw = portrait ? p.resize_shorter : static_cast<int>(new_long);
  } else if (p.resize == ResizeMode::exact) {
    if (p.resize_height < 1 || p.resize_width < 1) throw InputError("preprocess: resize size must be positive");
    th = p.resize_height;
    tw = p.resize_width;
    check_image_pixels(tw, th, "preprocess: resizing " + size_text(h, w) + " (HxW) to " + size_text(th, tw));
  }

  cv::Mat img = rgb;
  if (th != h || tw != w) cv::resize(rgb, img, cv::Size(tw, th), 0, 0, cv_interpolation(p.interpolation));

  if (p.crop_height > 0 || p.crop_width > 0) {
    if (p.crop_height < 1 || p.crop_width < 1) throw InputError("preprocess: crop size must be positive");
    const int ch = p.crop_height, cw = p.crop_width;
    check_image_pixels(std::max(cw, img.cols), std::max(ch, img.rows),
                       "preprocess: padding " + size_text(img.rows, img.cols) + " (HxW) for a " + size_text(ch, cw) +
                           " crop");
    if (ch > img.rows || cw > img.cols) {
      // torchvision pads with zeros, the odd pixel going to the bottom/right.
      const int pad_w = std::max(0, cw - img.cols), pad_h = std::max(0, ch - img.rows);
      cv::Mat padded;
      cv::copyMakeBorder(img, padded, pad_h / 2, (pad_h + 1) / 2, pad_w / 2, (pad_w + 1) / 2, cv::BORDER_CONSTANT,
                         cv::Scalar(0, 0, 0));
      img = padded;
    }
    const int top = center_crop_offset(img.rows, ch), left = center_crop_offset(img.cols, cw);
    img = img(cv::Rect(left, top, cw, ch));
  }

  PreprocessedImage out;
  out.rgb = img.clone();  // owns its pixels, continuous
  const int oh = out.rgb.rows, ow = out.rgb.cols;
  out.tensor = Array({3, oh, ow});
  const std::size_t plane = static_cast<std::size_t>(oh) * ow;
  for (int c = 0; c < 3; ++c) {
    // float32 throughout, as ToTensor (div(255)) then Normalize (sub_(mean).div_(std)) compute it.
    const float mean = static_cast<float>(p.mean[c]), stdv = static_cast<float>(p.std[c]);
    for (int y = 0; y < oh; ++y) {
      const std::uint8_t* row = out.rgb.ptr<std::uint8_t>(y);
      for (int x = 0; x < ow; ++x) {
        const float v = static_cast<float>(row[3 * x + c]) / 255.0f;
        out.tensor.data[c * plane + static_cast<std::size_t>(y) * ow + x] = static_cast<double>((v - mean) / stdv);
      }
    }
  }
  return out;
}

Array load_preprocessed_npy(const std::string& path, int height, int width) {
  Array a = read_npy(path);
  const std::string given = a.shape_string();
  if (a.rank() == 4 && a.shape[0] == 1) a.shape.erase(a.shape.begin());
  if (a.rank() != 3 || a.shape[0] != 3 || a.shape[1] < 1 || a.shape[2] < 1)
    throw InputError(path + ": preprocessed image must have shape [3,H,W] or [1,3,H,W], got " + given);
  if ((height > 0 && a.shape[1] != height) || (width > 0 && a.shape[2] != width))
    throw InputError(path + ": preprocessed image is " + std::to_string(a.shape[1]) + "x" + std::to_string(a.shape[2]) +
                     ", the model expects " + size_text(height > 0 ? height : static_cast<int>(a.shape[1]),
                                                        width > 0 ? width : static_cast<int>(a.shape[2])));
  for (double v : a.data)
    if (!std::isfinite(v)) throw InputError(path + ": preprocessed image contains NaN or Inf");
  return a;
}

}  // namespace attnlens
