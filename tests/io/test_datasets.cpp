#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/datasets.hpp"

namespace attnlens {
namespace {

namespace fs = std::filesystem;

// ---- helpers ----

void put_be32(std::string& s, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
}

// An IDX images file: magic 2051, count, rows, cols (big-endian), then the bytes.
std::string idx_images(std::uint32_t count, std::uint32_t rows, std::uint32_t cols,
                       const std::vector<unsigned char>& pixels, std::uint32_t magic = 2051) {
  std::string s;
  put_be32(s, magic);
  put_be32(s, count);
  put_be32(s, rows);
  put_be32(s, cols);
  s.append(pixels.begin(), pixels.end());
  return s;
}

std::string idx_labels(const std::vector<unsigned char>& labels, std::uint32_t count, std::uint32_t magic = 2049) {
  std::string s;
  put_be32(s, magic);
  put_be32(s, count);
  s.append(labels.begin(), labels.end());
  return s;
}

// Item i's pixel (r, c) in the synthetic IDX files: distinct per item and position, never zero.
unsigned char pixel_value(std::size_t i, int r, int c) {
  return static_cast<unsigned char>(1 + (i * 37 + r * 5 + c) % 250);
}

std::vector<unsigned char> synthetic_pixels(std::size_t n, int rows, int cols) {
  std::vector<unsigned char> p;
  for (std::size_t i = 0; i < n; ++i)
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) p.push_back(pixel_value(i, r, c));
  return p;
}

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("attnlens_datasets_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() +
                                        "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& rel) const { return (dir_ / rel).string(); }

  std::string put(const std::string& rel, const std::string& bytes) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }
  std::string put_gz(const std::string& rel, const std::string& bytes) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    gzFile f = gzopen(p.string().c_str(), "wb");
    EXPECT_NE(f, nullptr) << p;
    if (f == nullptr) return p.string();
    if (!bytes.empty()) {
      EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), int(bytes.size()));
    }
    EXPECT_EQ(gzclose(f), Z_OK);
    return p.string();
  }
  // A small BGR PNG/BMP whose every pixel is (b, g, r).
  std::string put_image(const std::string& rel, int b, int g, int r, int w = 4, int h = 3) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    EXPECT_TRUE(cv::imwrite(p.string(), cv::Mat(h, w, CV_8UC3, cv::Scalar(b, g, r)))) << p;
    return p.string();
  }

  // The InputError message of opening `spec`; fails the test when it opens.
  std::string open_error(const std::string& spec, const std::vector<std::string>& names = {}) {
    try {
      ImageDataset::open(spec, names);
    } catch (const InputError& e) {
      return e.what();
    }
    ADD_FAILURE() << "ImageDataset::open accepted " << spec;
    return "";
  }
  std::string get_error(const ImageDataset& ds, std::size_t i) {
    try {
      ds.get(i);
    } catch (const InputError& e) {
      return e.what();
    }
    ADD_FAILURE() << "get(" << i << ") succeeded";
    return "";
  }

  fs::path dir_;
};

const std::vector<std::string> kFashionNames{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// ---- IDX ----

class IdxDatasetTest : public DatasetTest {};

TEST_F(IdxDatasetTest, ReadsGzipImagesAndLabels) {
  const auto pix = synthetic_pixels(3, 4, 5);
  const std::string images = put_gz("train-images-idx3-ubyte.gz", idx_images(3, 4, 5, pix));
  put_gz("train-labels-idx1-ubyte.gz", idx_labels({7, 0, 255}, 3));
  const ImageDataset ds = ImageDataset::open(images);
  EXPECT_EQ(ds.kind(), "idx");
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_TRUE(ds.has_labels());
  EXPECT_FALSE(ds.has_boxes());
  const std::vector<int> labels{7, 0, 255};
  for (std::size_t i = 0; i < 3; ++i) {
    const DatasetItem item = ds.get(i);
    EXPECT_EQ(item.id, "idx:" + std::to_string(i));
    EXPECT_EQ(item.label, labels[i]);
    EXPECT_FALSE(item.box.has_value());
    ASSERT_EQ(item.rgb.type(), CV_8UC3);
    ASSERT_EQ(item.rgb.rows, 4);
    ASSERT_EQ(item.rgb.cols, 5);
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 5; ++c) {
        const cv::Vec3b v = item.rgb.at<cv::Vec3b>(r, c);
        ASSERT_EQ(v[0], pixel_value(i, r, c)) << i << " " << r << " " << c;
        ASSERT_EQ(v[1], v[0]);
        ASSERT_EQ(v[2], v[0]);
      }
  }
}

TEST_F(IdxDatasetTest, ReadsRawFilesWithoutLabels) {
  const auto pix = synthetic_pixels(2, 28, 28);
  const std::string images = put("t10k-images-idx3-ubyte", idx_images(2, 28, 28, pix));
  const ImageDataset ds = ImageDataset::open(images);
  EXPECT_EQ(ds.kind(), "idx");
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_FALSE(ds.has_labels());
  const DatasetItem item = ds.get(1);
  EXPECT_EQ(item.label, -1);
  EXPECT_EQ(item.rgb.size(), cv::Size(28, 28));
  EXPECT_EQ(item.rgb.at<cv::Vec3b>(27, 3)[1], pixel_value(1, 27, 3));
}

TEST_F(IdxDatasetTest, RawImagesWithGzipLabelsBeside) {
  const std::string images = put("x-images-idx3-ubyte", idx_images(2, 2, 2, synthetic_pixels(2, 2, 2)));
  put_gz("x-labels-idx1-ubyte.gz", idx_labels({4, 2}, 2));
  const ImageDataset ds = ImageDataset::open(images);
  ASSERT_TRUE(ds.has_labels());
  EXPECT_EQ(ds.get(0).label, 4);
  EXPECT_EQ(ds.get(1).label, 2);
}

TEST_F(IdxDatasetTest, FolderPrefersTestSplit) {
  put_gz("train-images-idx3-ubyte.gz", idx_images(2, 3, 3, synthetic_pixels(2, 3, 3)));
  put_gz("train-labels-idx1-ubyte.gz", idx_labels({1, 1}, 2));
  put_gz("t10k-images-idx3-ubyte.gz", idx_images(5, 3, 3, synthetic_pixels(5, 3, 3)));
  put_gz("t10k-labels-idx1-ubyte.gz", idx_labels({0, 1, 2, 3, 4}, 5));
  const ImageDataset ds = ImageDataset::open(dir_.string());
  EXPECT_EQ(ds.kind(), "idx");
  ASSERT_EQ(ds.size(), 5u);
  EXPECT_EQ(ds.get(4).label, 4);
}

TEST_F(IdxDatasetTest, BadFilesThrowNamingTheFile) {
  const auto pix = synthetic_pixels(3, 4, 4);
  {  // corrupt magic
    const std::string p = put_gz("a/bad-images-idx3-ubyte.gz", idx_images(3, 4, 4, pix, 2052));
    const std::string msg = open_error(p);
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("magic"), std::string::npos) << msg;
  }
  {  // a labels file given as images
    const std::string p = put("b/t-images-idx3-ubyte", idx_labels({1, 2}, 2));
    EXPECT_NE(open_error(p).find("2049 (IDX labels)"), std::string::npos);
  }
  {  // truncated pixels
    std::string bytes = idx_images(3, 4, 4, pix);
    bytes.resize(bytes.size() - 1);
    const std::string p = put("c/t-images-idx3-ubyte", bytes);
    const std::string msg = open_error(p);
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  }
  {  // truncated header
    const std::string p = put_gz("d/t-images-idx3-ubyte.gz", idx_images(3, 4, 4, {}).substr(0, 10));
    EXPECT_NE(open_error(p).find("truncated IDX header"), std::string::npos);
  }
  {  // bytes after the data
    std::string bytes = idx_images(3, 4, 4, pix) + "xx";
    const std::string p = put("e/t-images-idx3-ubyte", bytes);
    EXPECT_NE(open_error(p).find("2 unexpected bytes"), std::string::npos);
  }
  {  // label count mismatch: the labels file is named
    const std::string p = put_gz("f/t-images-idx3-ubyte.gz", idx_images(3, 4, 4, pix));
    const std::string l = put_gz("f/t-labels-idx1-ubyte.gz", idx_labels({1, 2}, 2));
    const std::string msg = open_error(p);
    EXPECT_NE(msg.find(l), std::string::npos) << msg;
    EXPECT_NE(msg.find("2 labels"), std::string::npos) << msg;
    EXPECT_NE(msg.find("3 images"), std::string::npos) << msg;
  }
  {  // labels truncated
    const std::string p = put("g/t-images-idx3-ubyte", idx_images(3, 4, 4, pix));
    put("g/t-labels-idx1-ubyte", idx_labels({1, 2}, 3));
    EXPECT_NE(open_error(p).find("truncated"), std::string::npos);
  }
  {  // labels with a bad magic number
    const std::string p = put("h/t-images-idx3-ubyte", idx_images(3, 4, 4, pix));
    put("h/t-labels-idx1-ubyte", idx_labels({1, 2, 3}, 3, 2051));
    EXPECT_NE(open_error(p).find("not an IDX labels file"), std::string::npos);
  }
  {  // empty file, raw and gzip'd
    const std::string p = put("i/t-images-idx3-ubyte", "");
    const std::string msg = open_error(p);
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
    EXPECT_NE(open_error(put_gz("i/u-images-idx3-ubyte.gz", "")).find("empty"), std::string::npos);
  }
  {  // zero images, zero-sized images
    EXPECT_NE(open_error(put("j/t-images-idx3-ubyte", idx_images(0, 4, 4, {}))).find("no images"), std::string::npos);
    EXPECT_NE(open_error(put("k/t-images-idx3-ubyte", idx_images(3, 0, 4, {}))).find("bad image size"),
              std::string::npos);
  }
  {  // a gzip stream cut short
    const std::string whole = put_gz("l/whole.gz", idx_images(3, 4, 4, pix));
    std::ifstream in(whole, std::ios::binary);
    std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string p = put("l/t-images-idx3-ubyte.gz", gz.substr(0, gz.size() / 2));
    const std::string msg = open_error(p);
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
  }
}

// ---- canvas ----

class CanvasDatasetTest : public DatasetTest {};

// splitmix64 written as Java's SplittableRandom does it (state advanced by the golden gamma, then mix64), with
// the constants spelled in decimal, so a typo in either implementation shows.
std::uint64_t reference_splitmix(std::uint64_t seed, std::uint64_t i) {
  const std::uint64_t gamma = 11400714819323198485ull;  // 0x9e3779b97f4a7c15
  std::uint64_t z = seed + i + gamma;
  z = (z ^ (z >> 30)) * 13787848793156543929ull;  // 0xbf58476d1ce4e5b9
  z = (z ^ (z >> 27)) * 10723151780598845931ull;  // 0x94d049bb133111eb
  return z ^ (z >> 31);
}

TEST_F(CanvasDatasetTest, PlacementMatchesHandComputedSplitmix) {
  // Values computed once by hand (Python, arbitrary-precision integers masked to 64 bits).
  EXPECT_EQ(splitmix64(12345), 0x22118258a9d111a0ull);
  EXPECT_EQ(splitmix64(12346), 0xcb7e37b4889c6fe7ull);
  EXPECT_EQ(splitmix64(12347), 0x51b05987a27fba4dull);
  // y = (h & 0xffffffff) % 29, x = (h >> 32) % 29: item 0 (y 9, x 21), 1 (3, 10), 2 (23, 26).
  const int expect[3][2] = {{9, 21}, {3, 10}, {23, 26}};
  for (std::size_t i = 0; i < 3; ++i) {
    const Box b = canvas_offset(i);
    EXPECT_EQ(b.y0, expect[i][0]) << i;
    EXPECT_EQ(b.x0, expect[i][1]) << i;
    EXPECT_EQ(b.x1, b.x0 + 28);
    EXPECT_EQ(b.y1, b.y0 + 28);
  }
  for (std::uint64_t i = 0; i < 2000; ++i) {
    const std::uint64_t h = reference_splitmix(12345, i);
    const Box b = canvas_offset(i);
    ASSERT_EQ(std::uint64_t(b.y0), (h & 0xffffffffull) % 29) << i;
    ASSERT_EQ(std::uint64_t(b.x0), (h >> 32) % 29) << i;
  }
}

TEST_F(CanvasDatasetTest, NonzeroBoxIsTight) {
  cv::Mat m = cv::Mat::zeros(10, 12, CV_8UC3);
  EXPECT_FALSE(nonzero_box(m).has_value());
  m.at<cv::Vec3b>(2, 3) = cv::Vec3b(0, 0, 1);  // only the last channel
  m.at<cv::Vec3b>(7, 9) = cv::Vec3b(5, 0, 0);
  const auto b = nonzero_box(m);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->x0, 3);
  EXPECT_EQ(b->y0, 2);
  EXPECT_EQ(b->x1, 10);
  EXPECT_EQ(b->y1, 8);
}

// Checks a canvas item: 56x56 RGB, the item's pixels at canvas_offset and zero elsewhere, and a tight box.
void check_canvas_item(const DatasetItem& item, std::size_t index) {
  ASSERT_EQ(item.rgb.type(), CV_8UC3);
  ASSERT_EQ(item.rgb.rows, 56);
  ASSERT_EQ(item.rgb.cols, 56);
  EXPECT_EQ(item.id, "canvas:" + std::to_string(index));
  ASSERT_TRUE(item.box.has_value());
  const Box at = canvas_offset(index);
  const Box b = *item.box;
  int x0 = 56, y0 = 56, x1 = 0, y1 = 0;
  for (int y = 0; y < 56; ++y)
    for (int x = 0; x < 56; ++x) {
      const cv::Vec3b v = item.rgb.at<cv::Vec3b>(y, x);
      ASSERT_EQ(v[0], v[1]);
      ASSERT_EQ(v[0], v[2]);
      const bool inside_paste = x >= at.x0 && x < at.x1 && y >= at.y0 && y < at.y1;
      if (!inside_paste) {
        ASSERT_EQ(v[0], 0) << "ink outside the pasted area at " << x << "," << y;
      }
      if (v[0] != 0) {
        ASSERT_TRUE(x >= b.x0 && x < b.x1 && y >= b.y0 && y < b.y1) << "pixel " << x << "," << y << " outside the box";
        x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x + 1), y1 = std::max(y1, y + 1);
      }
    }
  if (x1 == 0) {  // blank item: the whole pasted area
    EXPECT_EQ(b.x0, at.x0);
    EXPECT_EQ(b.y0, at.y0);
    EXPECT_EQ(b.x1, at.x1);
    EXPECT_EQ(b.y1, at.y1);
  } else {  // tight
    EXPECT_EQ(b.x0, x0);
    EXPECT_EQ(b.y0, y0);
    EXPECT_EQ(b.x1, x1);
    EXPECT_EQ(b.y1, y1);
  }
}

TEST_F(CanvasDatasetTest, SyntheticSplitIsPastedAtTheOffsets) {
  // Item 0: full of ink; item 1: a single pixel at (row 5, col 20); item 2: blank.
  std::vector<unsigned char> pix = synthetic_pixels(1, 28, 28);
  std::vector<unsigned char> one(28 * 28, 0);
  one[5 * 28 + 20] = 200;
  pix.insert(pix.end(), one.begin(), one.end());
  pix.insert(pix.end(), 28 * 28, 0);
  put_gz("fm/t10k-images-idx3-ubyte.gz", idx_images(3, 28, 28, pix));
  put_gz("fm/t10k-labels-idx1-ubyte.gz", idx_labels({9, 2, 1}, 3));
  const ImageDataset ds = ImageDataset::open("canvas:" + path("fm"));
  EXPECT_EQ(ds.kind(), "canvas");
  EXPECT_TRUE(ds.has_labels());
  EXPECT_TRUE(ds.has_boxes());
  ASSERT_EQ(ds.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) check_canvas_item(ds.get(i), i);
  EXPECT_EQ(ds.get(0).label, 9);
  EXPECT_EQ(ds.get(2).label, 1);
  // Item 0 (offset x 21, y 9): its pixel (r, c) lands at (9 + r, 21 + c).
  const DatasetItem a = ds.get(0);
  EXPECT_EQ(a.rgb.at<cv::Vec3b>(9 + 3, 21 + 4)[0], pixel_value(0, 3, 4));
  EXPECT_EQ(a.box->x0, 21);
  EXPECT_EQ(a.box->y1, 9 + 28);
  // Item 1 (offset x 10, y 3): one pixel, a 1x1 box.
  const DatasetItem b = ds.get(1);
  EXPECT_EQ(b.box->x0, 10 + 20);
  EXPECT_EQ(b.box->y0, 3 + 5);
  EXPECT_EQ(b.box->x1, 10 + 21);
  EXPECT_EQ(b.box->y1, 3 + 6);
  // Item 2 (offset x 26, y 23) is blank: the whole pasted area.
  const DatasetItem c = ds.get(2);
  EXPECT_EQ(c.box->x0, 26);
  EXPECT_EQ(c.box->y0, 23);
  EXPECT_EQ(c.box->x1, 54);
  EXPECT_EQ(c.box->y1, 51);
}

TEST_F(CanvasDatasetTest, NeedsTheTestSplitWithLabelsOf28x28Items) {
  EXPECT_NE(open_error("canvas:" + path("nowhere")).find(path("nowhere")), std::string::npos);
  put_gz("nolabels/t10k-images-idx3-ubyte.gz", idx_images(1, 28, 28, synthetic_pixels(1, 28, 28)));
  EXPECT_NE(open_error("canvas:" + path("nolabels")).find("t10k-labels-idx1-ubyte"), std::string::npos);
  put_gz("small/t10k-images-idx3-ubyte.gz", idx_images(1, 5, 5, synthetic_pixels(1, 5, 5)));
  put_gz("small/t10k-labels-idx1-ubyte.gz", idx_labels({1}, 1));
  EXPECT_NE(open_error("canvas:" + path("small")).find("28x28"), std::string::npos);
  EXPECT_NE(open_error("canvas:").find("canvas:DIR"), std::string::npos);
}

TEST_F(CanvasDatasetTest, RealFashionMnistTestSplit) {
  if (!fs::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << kFashionMnistDir << " not installed (Debian package dataset-fashion-mnist)";
  }
  ImageDataset ds = ImageDataset::open("canvas");
  EXPECT_EQ(ds.kind(), "canvas");
  ASSERT_EQ(ds.size(), 10000u);
  const DatasetItem first = ds.get(0);
  EXPECT_EQ(first.label, 9);  // Ankle boot
  check_canvas_item(first, 0);
  check_canvas_item(ds.get(1), 1);
  check_canvas_item(ds.get(9999), 9999);
  // The same split read as plain IDX: the canvas holds item 0's 28x28 pixels at its offset.
  const ImageDataset idx = ImageDataset::open(kFashionMnistDir);
  EXPECT_EQ(idx.kind(), "idx");
  ASSERT_EQ(idx.size(), 10000u);
  const DatasetItem raw = idx.get(0);
  EXPECT_EQ(raw.label, 9);
  const Box at = canvas_offset(0);
  EXPECT_EQ(cv::norm(raw.rgb, first.rgb(cv::Rect(at.x0, at.y0, 28, 28)), cv::NORM_INF), 0.0);
  ds.select(5, true, 3);
  ASSERT_EQ(ds.size(), 5u);
  for (std::size_t k = 0; k < 5; ++k) {  // selected items keep their own ids and placements
    const DatasetItem item = ds.get(k);
    check_canvas_item(item, std::stoul(item.id.substr(7)));
  }
}

// ---- samples.json ----

class BoxesDatasetTest : public DatasetTest {};

TEST_F(BoxesDatasetTest, BundledFashionSamples) {
  const std::string dir = std::string(ATTNLENS_SOURCE_DIR) + "/data/models/fmnist-vit/samples";
  const ImageDataset ds = ImageDataset::open(dir);
  EXPECT_EQ(ds.kind(), "boxes");
  EXPECT_TRUE(ds.has_labels());
  EXPECT_TRUE(ds.has_boxes());
  ASSERT_EQ(ds.size(), 16u);
  const DatasetItem item = ds.get(0);
  EXPECT_EQ(item.label, 9);
  EXPECT_EQ(item.id, (fs::path(dir) / "00_ankle-boot.png").string());
  ASSERT_TRUE(item.box.has_value());
  EXPECT_EQ(item.box->x0, 6);
  EXPECT_EQ(item.box->y0, 27);
  EXPECT_EQ(item.box->x1, 34);
  EXPECT_EQ(item.box->y1, 42);
  EXPECT_EQ(item.rgb.type(), CV_8UC3);
  EXPECT_EQ(item.rgb.size(), cv::Size(56, 56));
  // The boxes are the tight boxes of each canvas' ink (the training tool's definition).
  for (std::size_t i = 0; i < ds.size(); ++i) {
    const DatasetItem it = ds.get(i);
    const auto ink = nonzero_box(it.rgb);
    ASSERT_TRUE(ink.has_value()) << i;
    EXPECT_EQ(ink->x0, it.box->x0) << i;
    EXPECT_EQ(ink->y0, it.box->y0) << i;
    EXPECT_EQ(ink->x1, it.box->x1) << i;
    EXPECT_EQ(ink->y1, it.box->y1) << i;
  }
  // The .json file itself works too.
  EXPECT_EQ(ImageDataset::open(dir + "/samples.json").size(), 16u);
}

TEST_F(BoxesDatasetTest, BadSamplesJsonThrowsNamingFileAndEntry) {
  put_image("s/a.png", 0, 0, 0, 8, 6);
  const std::string json = path("s/samples.json");
  auto expect_error = [&](const std::string& text, const std::string& part) {
    put("s/samples.json", text);
    const std::string msg = open_error(path("s"));
    EXPECT_NE(msg.find(json), std::string::npos) << msg;
    EXPECT_NE(msg.find(part), std::string::npos) << "expected '" << part << "' in: " << msg;
  };
  const std::string good = R"({"file": "a.png", "label": 1, "box_xyxy": [0, 0, 8, 6]})";
  expect_error("[" + good + ", " + good, "invalid JSON");
  expect_error(R"({"file": "a.png"})", "JSON array");
  expect_error("[]", "no items");
  expect_error("[" + good + R"(, {"file": "a.png", "label": 1}])", "entry 1 (a.png): missing \"box_xyxy\"");
  expect_error(R"([{"label": 1, "box_xyxy": [0, 0, 1, 1]}])", "entry 0: missing \"file\"");
  expect_error(R"([{"file": "a.png", "label": "1", "box_xyxy": [0, 0, 1, 1]}])", "entry 0 (a.png): \"label\" must be");
  expect_error(R"([{"file": "a.png", "label": 1.5, "box_xyxy": [0, 0, 1, 1]}])", "\"label\" must be an integer");
  expect_error(R"([{"file": "a.png", "label": -2, "box_xyxy": [0, 0, 1, 1]}])", "\"label\" must be >= 0");
  expect_error(R"([{"file": 3, "label": 1, "box_xyxy": [0, 0, 1, 1]}])", "\"file\" must be");
  expect_error(R"([{"file": "a.png", "label": 1, "box_xyxy": [0, 0, 1]}])", "\"box_xyxy\" must be");
  expect_error(R"([{"file": "a.png", "label": 1, "box_xyxy": [0, 0, 1, "x"]}])", "\"box_xyxy\" must be an integer");
  expect_error(R"([{"file": "a.png", "label": 1, "box_xyxy": [3, 0, 3, 1]}])", "is not a box");
  expect_error(R"([{"file": "b.png", "label": 1, "box_xyxy": [0, 0, 1, 1]}])", "no such image file");
  expect_error("[3]", "entry 0: expected an object");

  // A box outside the image is found when the item is decoded.
  put("s/samples.json", "[" + good + R"(, {"file": "a.png", "label": 2, "box_xyxy": [0, 0, 9, 6]}])");
  const ImageDataset ds = ImageDataset::open(path("s"));
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.get(0).box->x1, 8);
  const std::string msg = get_error(ds, 1);
  EXPECT_NE(msg.find(json), std::string::npos) << msg;
  EXPECT_NE(msg.find("entry 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("outside"), std::string::npos) << msg;
}

// Fuzzing finding: an entry whose "file" nested 100,000 arrays overflowed the stack while the error message dumped
// it; JSON nesting is bounded when parsing, and messages describe values instead of dumping them.
TEST_F(BoxesDatasetTest, DeepOrHugeJsonFailsWithAShortMessage) {
  put_image("d/a.png", 0, 0, 0, 8, 6);
  const std::string json = path("d/samples.json");
  put("d/samples.json", R"([{"file": )" + std::string(100000, '[') + std::string(100000, ']') + "}]");
  EXPECT_EQ(open_error(path("d")), json + ": JSON nests deeper than 64 levels");
  put("d/samples.json", std::string(1000000, '[') + std::string(1000000, ']'));
  EXPECT_EQ(open_error(path("d")), json + ": JSON nests deeper than 64 levels");
  std::string wide = "[";
  for (int i = 0; i < 10000; ++i) wide += "1,";
  put("d/samples.json", R"([{"file": )" + wide + "1]}]");
  EXPECT_EQ(open_error(path("d")),
            json + ": entry 0: \"file\" must be a non-empty string, got an array of 10001 values");
  put("d/samples.json", R"([{"file": "a.png", "file": "b.png", "label": 1, "box_xyxy": [0, 0, 1, 1]}])");
  EXPECT_EQ(open_error(path("d")), json + ": key \"file\" appears twice in one JSON object");
}

// ---- folders ----

class FolderDatasetTest : public DatasetTest {};

TEST_F(FolderDatasetTest, ClassFoldersMatchClassNames) {
  put_image("d/Trouser/a.png", 1, 2, 3);
  put_image("d/ankle_boot/x.png", 10, 20, 30);
  put_image("d/ankle_boot/deeper/y.PNG", 11, 21, 31);  // recursive, extension case-insensitive
  put_image("d/bag/z.bmp", 40, 50, 60);
  put("d/bag/notes.txt", "not an image");
  put_image("d/.hidden/h.png", 0, 0, 0);    // hidden: skipped
  fs::create_directories(path("d/empty"));  // no images: not a class
  const ImageDataset ds = ImageDataset::open(path("d"), kFashionNames);
  EXPECT_EQ(ds.kind(), "class-folders");
  EXPECT_TRUE(ds.has_labels());
  EXPECT_FALSE(ds.has_boxes());
  ASSERT_EQ(ds.size(), 4u);
  // Folders sorted by name (byte order: upper case first), images by path.
  EXPECT_EQ(ds.get(0).id, path("d/Trouser/a.png"));
  EXPECT_EQ(ds.get(0).label, 1);
  EXPECT_EQ(ds.get(1).id, path("d/ankle_boot/deeper/y.PNG"));
  EXPECT_EQ(ds.get(1).label, 9);
  EXPECT_EQ(ds.get(2).id, path("d/ankle_boot/x.png"));
  EXPECT_EQ(ds.get(2).label, 9);
  EXPECT_EQ(ds.get(3).id, path("d/bag/z.bmp"));
  EXPECT_EQ(ds.get(3).label, 8);
  // Decoded as RGB: written as BGR (40, 50, 60).
  const DatasetItem z = ds.get(3);
  ASSERT_EQ(z.rgb.type(), CV_8UC3);
  EXPECT_EQ(z.rgb.size(), cv::Size(4, 3));
  EXPECT_EQ(z.rgb.at<cv::Vec3b>(2, 3), cv::Vec3b(60, 50, 40));
  EXPECT_FALSE(z.box.has_value());
}

TEST_F(FolderDatasetTest, IntegerFolderNamesAreLabels) {
  put_image("n/3/a.png", 0, 0, 3);
  put_image("n/10/a.png", 0, 0, 10);
  put_image("n/07/a.png", 0, 0, 7);
  const ImageDataset ds = ImageDataset::open(path("n"));
  ASSERT_EQ(ds.size(), 3u);
  // sorted: "07" < "10" < "3"
  EXPECT_EQ(ds.get(0).label, 7);
  EXPECT_EQ(ds.get(1).label, 10);
  EXPECT_EQ(ds.get(2).label, 3);
  // With the model's 10 classes, class 10 does not exist.
  const std::string msg = open_error(path("n"), kFashionNames);
  EXPECT_NE(msg.find("'10' is class 10"), std::string::npos) << msg;
}

TEST_F(FolderDatasetTest, OtherNamesTakeTheirSortedPosition) {
  put_image("f/dog/a.png", 0, 0, 0);
  put_image("f/cat/a.png", 0, 0, 0);
  put_image("f/cat/b.png", 0, 0, 0);
  put_image("f/ant/a.png", 0, 0, 0);
  // "dog" and "cat" are model classes but "ant" is not: not every name matches, so the sorted rule applies.
  const ImageDataset ds = ImageDataset::open(path("f"), {"dog", "cat", "bird"});
  ASSERT_EQ(ds.size(), 4u);
  EXPECT_EQ(ds.get(0).label, 0);  // ant
  EXPECT_EQ(ds.get(1).label, 1);  // cat
  EXPECT_EQ(ds.get(2).label, 1);
  EXPECT_EQ(ds.get(3).label, 2);  // dog
  EXPECT_EQ(ds.get(3).id, path("f/dog/a.png"));
  // A mix of numbers and words is not numeric either.
  put_image("g/5/a.png", 0, 0, 0);
  put_image("g/x/a.png", 0, 0, 0);
  const ImageDataset mixed = ImageDataset::open(path("g"));
  EXPECT_EQ(mixed.get(0).label, 0);
  EXPECT_EQ(mixed.get(1).label, 1);
}

TEST_F(FolderDatasetTest, FlatImageFolderHasNoLabels) {
  put_image("i/b.png", 0, 0, 0);
  put_image("i/a.bmp", 0, 0, 0);
  put_image("i/c.TIFF", 0, 0, 0);
  put("i/readme.md", "#");
  fs::create_directories(path("i/empty_sub"));
  const ImageDataset ds = ImageDataset::open(path("i"), kFashionNames);
  EXPECT_EQ(ds.kind(), "image-folder");
  EXPECT_FALSE(ds.has_labels());
  EXPECT_FALSE(ds.has_boxes());
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds.get(0).id, path("i/a.bmp"));
  EXPECT_EQ(ds.get(1).id, path("i/b.png"));
  EXPECT_EQ(ds.get(2).id, path("i/c.TIFF"));
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(ds.get(i).label, -1);
}

TEST_F(FolderDatasetTest, UnreadableImageThrowsAtGet) {
  put("u/broken.png", "not a png at all");
  const ImageDataset ds = ImageDataset::open(path("u"));
  ASSERT_EQ(ds.size(), 1u);
  const std::string msg = get_error(ds, 0);
  EXPECT_NE(msg.find(path("u/broken.png")), std::string::npos) << msg;
  EXPECT_THROW(ds.get(1), std::out_of_range);
}

// ---- select ----

class SelectDatasetTest : public DatasetTest {};

std::vector<std::string> ids(const ImageDataset& ds) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < ds.size(); ++i) out.push_back(ds.get(i).id);
  return out;
}

TEST_F(SelectDatasetTest, ShuffleIsDeterministicAndLimitKeepsThePrefix) {
  const std::string images = put("s-images-idx3-ubyte", idx_images(20, 2, 2, synthetic_pixels(20, 2, 2)));
  const ImageDataset all = ImageDataset::open(images);
  ASSERT_EQ(all.size(), 20u);

  ImageDataset first = all, again = all, other = all;
  first.select(0, true, 42);
  again.select(0, true, 42);
  other.select(0, true, 43);
  const auto order = ids(first);
  EXPECT_EQ(order, ids(again));
  EXPECT_NE(order, ids(other));
  EXPECT_NE(order, ids(all));
  // A permutation.
  std::set<std::string> seen(order.begin(), order.end());
  EXPECT_EQ(seen.size(), 20u);
  // The documented algorithm, restated: for i = n-1..1, j = mt19937_64() % (i + 1), swap.
  std::vector<int> ref(20);
  for (int i = 0; i < 20; ++i) ref[i] = i;
  std::mt19937_64 rng(42);
  for (int i = 19; i > 0; --i) std::swap(ref[i], ref[rng() % (i + 1)]);
  for (int k = 0; k < 20; ++k) EXPECT_EQ(order[k], "idx:" + std::to_string(ref[k])) << k;
  // Labels and pixels travel with their items.
  EXPECT_EQ(first.get(0).rgb.at<cv::Vec3b>(1, 1)[0], pixel_value(ref[0], 1, 1));

  ImageDataset limited = all;
  limited.select(3, false, 0);
  EXPECT_EQ(ids(limited), (std::vector<std::string>{"idx:0", "idx:1", "idx:2"}));
  ImageDataset shuffled_limited = all;
  shuffled_limited.select(5, true, 42);
  EXPECT_EQ(ids(shuffled_limited), std::vector<std::string>(order.begin(), order.begin() + 5));
  ImageDataset big_limit = all;
  big_limit.select(100, false, 0);
  EXPECT_EQ(big_limit.size(), 20u);
}

// ---- bad specs ----

class DatasetErrorTest : public DatasetTest {};

TEST_F(DatasetErrorTest, BadSpecsThrowInputErrorNamingThePath) {
  const std::string missing = path("no/such/place");
  EXPECT_NE(open_error(missing).find(missing), std::string::npos);
  EXPECT_NE(open_error("").find("empty data set"), std::string::npos);

  fs::create_directories(path("empty"));
  std::string msg = open_error(path("empty"));
  EXPECT_NE(msg.find(path("empty")), std::string::npos) << msg;
  EXPECT_NE(msg.find("no images"), std::string::npos) << msg;

  put("texts/a.txt", "x");
  fs::create_directories(path("texts/sub"));
  put("texts/sub/b.csv", "y");
  EXPECT_NE(open_error(path("texts")).find("no images"), std::string::npos);

  // A single image is not a data set; any other file is taken as IDX and fails its magic check.
  const std::string png = put_image("one.png", 0, 0, 0);
  EXPECT_NE(open_error(png).find("single image"), std::string::npos);
  const std::string other = put("notes.txt", "hello world, not IDX");
  msg = open_error(other);
  EXPECT_NE(msg.find(other), std::string::npos) << msg;
  EXPECT_NE(msg.find("magic"), std::string::npos) << msg;

  put("bad/samples.json", "{not json");
  EXPECT_NE(open_error(path("bad")).find("samples.json"), std::string::npos);
}

}  // namespace
}  // namespace attnlens
