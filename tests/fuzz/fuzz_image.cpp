// The image entry points attnlens itself owns (io/image): the completeness and declared-size checks before OpenCV
// decodes a PNG or BMP (the format attnlens writes, and the simplest one), the decoded-size bound, and preprocess():
// resize, centre crop with padding, normalisation, with sizes from the input. OpenCV's decoders themselves are not
// the target (they are not instrumented), so other formats are not passed to them.
#include <opencv2/core.hpp>

#include "io/image.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // A smaller bound than the default (2^25) keeps each run fast (a 2^18-pixel image resizes in milliseconds); the
  // code paths and the checks are the same. At the default, the largest allowed result (a 2^25-pixel tensor of
  // doubles, 0.8 GB) stays under the 2 GB limit.
  attnlens::set_max_image_pixels(std::int64_t{1} << 18);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace attnlens;
  if (size < 11) return 0;
  const auto u16 = [&](std::size_t at) { return (data[at] << 8) | data[at + 1]; };
  Preprocess p;
  p.resize = static_cast<ResizeMode>(data[0] % 3);
  p.interpolation = static_cast<Interpolation>((data[0] >> 2) % 4);
  p.resize_shorter = p.resize_height = u16(1);
  p.resize_width = u16(3);
  if (data[0] & 0x10) {
    p.crop_height = u16(5);
    p.crop_width = u16(7);
  }
  const std::string_view rest = fuzz::as_bytes(data + 9, size - 9);
  fuzz::only_input_errors([&] {
    cv::Mat rgb;
    if (rest.rfind("\x89PNG", 0) == 0 || rest.rfind("BM", 0) == 0) {
      rgb = read_image_rgb(fuzz::put_file(rest[0] == 'B' ? "input.bmp" : "input.png", rest));
      if (rgb.type() != CV_8UC3) fuzz::invariant_failed("decoded image is not 8-bit RGB");
      if (static_cast<std::int64_t>(rgb.rows) * rgb.cols > max_image_pixels())
        fuzz::invariant_failed("decoded image over the pixel limit");
    } else {
      // A small image with the input's bytes as pixels.
      const int h = 1 + static_cast<unsigned char>(rest[0]) % 64, w = 1 + static_cast<unsigned char>(rest[1]) % 64;
      rgb = cv::Mat(h, w, CV_8UC3);
      for (std::size_t i = 0; i < rgb.total() * 3; ++i) rgb.data[i] = static_cast<unsigned char>(rest[i % rest.size()]);
    }
    const PreprocessedImage out = preprocess(rgb, p);
    if (out.tensor.rank() != 3 || out.tensor.shape[0] != 3 || out.tensor.shape[1] != out.rgb.rows ||
        out.tensor.shape[2] != out.rgb.cols)
      fuzz::invariant_failed("tensor shape does not match the preprocessed image");
    if (static_cast<std::int64_t>(out.rgb.rows) * out.rgb.cols > max_image_pixels())
      fuzz::invariant_failed("preprocessed image over the pixel limit");
  });
  return 0;
}
