// Image data sets (io/datasets): IDX images and labels, raw or gzip (zlib's gzread tells them apart by content),
// and samples.json. The first byte picks the kind; the rest is the file (two files for IDX with labels).
#include <opencv2/imgcodecs.hpp>

#include "io/datasets.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

// The images samples.json entries may name: one PNG, one BMP (small; decoding them is OpenCV's business).
void put_sample_images() {
  static const bool done = [] {
    const auto dir = attnlens::fuzz::scratch_dir() / "boxes";
    std::filesystem::create_directories(dir);
    cv::imwrite((dir / "a.png").string(), cv::Mat(8, 8, CV_8UC3, cv::Scalar(10, 200, 30)));
    cv::imwrite((dir / "b.bmp").string(), cv::Mat(4, 6, CV_8UC1, cv::Scalar(99)));
    return true;
  }();
  (void)done;
}

void read_some_items(const attnlens::ImageDataset& ds) {
  if (ds.size() == 0) attnlens::fuzz::invariant_failed("an empty data set opened");
  for (std::size_t i = 0; i < std::min<std::size_t>(ds.size(), 3); ++i) {
    const attnlens::DatasetItem item = ds.get(i);
    if (item.rgb.empty() || item.rgb.type() != CV_8UC3) attnlens::fuzz::invariant_failed("item not 8-bit RGB");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace attnlens;
  if (size < 1) return 0;
  put_sample_images();
  const std::string_view body = fuzz::as_bytes(data + 1, size - 1);
  fuzz::only_input_errors([&] {
    switch (data[0] % 3) {
      case 0: {
        fuzz::put_file("boxes/samples.json", body);
        read_some_items(ImageDataset::open((fuzz::scratch_dir() / "boxes").string()));
        break;
      }
      case 1: {
        std::filesystem::remove(fuzz::scratch_dir() / "idx/t-labels-idx1-ubyte");
        read_some_items(ImageDataset::open(fuzz::put_file("idx/t-images-idx3-ubyte", body)));
        break;
      }
      default: {
        // Two big-endian bytes: how much of the rest is the images file; the labels file is what follows.
        if (body.size() < 2) return;
        const std::size_t n = std::min<std::size_t>(
            body.size() - 2, (static_cast<unsigned char>(body[0]) << 8) | static_cast<unsigned char>(body[1]));
        fuzz::put_file("idx/t-labels-idx1-ubyte", body.substr(2 + n));
        const ImageDataset ds = ImageDataset::open(fuzz::put_file("idx/t-images-idx3-ubyte", body.substr(2, n)));
        read_some_items(ds);
        for (std::size_t i = 0; i < std::min<std::size_t>(ds.size(), 3); ++i)
          if (ds.has_labels() && ds.get(i).label < 0) fuzz::invariant_failed("a labelled item without a label");
        break;
      }
    }
  });
  return 0;
}
