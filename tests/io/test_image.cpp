#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "io/image.hpp"
#include "io/npy.hpp"

namespace attnlens {
namespace {

namespace fs = std::filesystem;

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("attnlens_image_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_image(const std::string& name, const cv::Mat& m) {
    const std::string p = (dir_ / name).string();
    EXPECT_TRUE(cv::imwrite(p, m)) << p;
    return p;
  }
  std::string put(const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  // The InputError message for reading `path`; fails the test when it reads fine.
  std::string read_error(const std::string& path) {
    try {
      read_image_rgb(path);
    } catch (const InputError& e) {
      return e.what();
    }
    ADD_FAILURE() << "read_image_rgb accepted " << path;
    return "";
  }

  fs::path dir_;
};

// w x h RGB image whose pixel (y, x) is (x mod 256, y mod 256, 7).
cv::Mat coordinate_image(int w, int h) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      m.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<std::uint8_t>(x % 256), static_cast<std::uint8_t>(y % 256), 7);
  return m;
}

TEST_F(ImageTest, ReadsColourPngAsRgb) {
  cv::Mat bgr(2, 3, CV_8UC3, cv::Scalar(10, 20, 30));  // B, G, R
  const cv::Mat rgb = read_image_rgb(write_image("c.png", bgr));
  ASSERT_EQ(rgb.type(), CV_8UC3);
  ASSERT_EQ(rgb.size(), cv::Size(3, 2));
  EXPECT_EQ(rgb.at<cv::Vec3b>(1, 2), cv::Vec3b(30, 20, 10));
}

TEST_F(ImageTest, GrayscaleBecomesThreeEqualChannels) {
  cv::Mat gray(2, 2, CV_8UC1);
  gray.at<std::uint8_t>(0, 0) = 0;
  gray.at<std::uint8_t>(0, 1) = 77;
  gray.at<std::uint8_t>(1, 0) = 200;
  gray.at<std::uint8_t>(1, 1) = 255;
  const cv::Mat rgb = read_image_rgb(write_image("g.png", gray));
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(77, 77, 77));
  EXPECT_EQ(rgb.at<cv::Vec3b>(1, 0), cv::Vec3b(200, 200, 200));
}

TEST_F(ImageTest, AlphaIsDroppedNotComposited) {
  cv::Mat bgra(2, 2, CV_8UC4, cv::Scalar(10, 20, 30, 0));  // fully transparent: colour must survive
  bgra.at<cv::Vec4b>(1, 1) = cv::Vec4b(1, 2, 3, 128);
  const cv::Mat rgb = read_image_rgb(write_image("a.png", bgra));
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(30, 20, 10));
  EXPECT_EQ(rgb.at<cv::Vec3b>(1, 1), cv::Vec3b(3, 2, 1));
}

TEST_F(ImageTest, SixteenBitIsScaledToEightBit) {
  cv::Mat deep(1, 3, CV_16UC1);
  deep.at<std::uint16_t>(0, 0) = 65535;
  deep.at<std::uint16_t>(0, 1) = 257 * 100;
  deep.at<std::uint16_t>(0, 2) = 0;
  const cv::Mat rgb = read_image_rgb(write_image("d.png", deep));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(100, 100, 100));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 2), cv::Vec3b(0, 0, 0));
}

TEST_F(ImageTest, ReadsJpegAndBmp) {
  const cv::Mat bgr(16, 24, CV_8UC3, cv::Scalar(40, 120, 200));
  const cv::Mat jpg = read_image_rgb(write_image("p.jpg", bgr));
  ASSERT_EQ(jpg.size(), cv::Size(24, 16));
  EXPECT_NEAR(jpg.at<cv::Vec3b>(8, 12)[0], 200, 3);  // lossy
  EXPECT_NEAR(jpg.at<cv::Vec3b>(8, 12)[2], 40, 3);
  const cv::Mat bmp = read_image_rgb(write_image("p.bmp", bgr));
  EXPECT_EQ(bmp.at<cv::Vec3b>(8, 12), cv::Vec3b(200, 120, 40));
}

TEST_F(ImageTest, UnreadableFilesAreInputErrorsNamingThePath) {
  const std::string missing = (dir_ / "missing.png").string();
  EXPECT_NE(read_error(missing).find(missing), std::string::npos);

  const std::string garbage = put("garbage.png", "this is not an image at all");
  EXPECT_NE(read_error(garbage).find(garbage), std::string::npos);

  // A real PNG cut in the middle of its data.
  std::vector<std::uint8_t> png;
  cv::imencode(".png", coordinate_image(64, 64), png);
  const std::string truncated = put("truncated.png", std::string(png.begin(), png.begin() + png.size() / 2));
  EXPECT_NE(read_error(truncated).find(truncated), std::string::npos);

  const std::string empty = put("empty.jpg", "");
  EXPECT_NE(read_error(empty).find(empty), std::string::npos);
  EXPECT_NE(read_error(dir_.string()).find(dir_.string()), std::string::npos);
}

TEST(ImagePresets, ValuesForTheReferenceModels) {
  const Preprocess deit = preprocess_preset("timm-deit");
  EXPECT_EQ(deit.resize, ResizeMode::shorter_side);
  EXPECT_EQ(deit.resize_shorter, 248);
  EXPECT_EQ(deit.interpolation, Interpolation::bicubic);
  EXPECT_EQ(deit.crop_height, 224);
  EXPECT_EQ(deit.crop_width, 224);
  EXPECT_EQ(deit.mean, kImageNetMean);
  EXPECT_EQ(deit.std, kImageNetStd);

  const Preprocess vit = preprocess_preset("timm-vit");
  EXPECT_EQ(vit.resize_shorter, 248);
  EXPECT_EQ(vit.mean, (std::array<double, 3>{0.5, 0.5, 0.5}));

  const Preprocess hf = preprocess_preset("hf");
  EXPECT_EQ(hf.resize, ResizeMode::exact);
  EXPECT_EQ(hf.interpolation, Interpolation::bilinear);
  EXPECT_EQ(hf.crop_height, 0);

  const Preprocess dino = preprocess_preset("dino");
  EXPECT_EQ(dino.resize_shorter, 256);
  EXPECT_EQ(dino.mean, kImageNetMean);

  const Preprocess ve = preprocess_preset("vit-explain");
  EXPECT_EQ(ve.resize, ResizeMode::exact);
  EXPECT_EQ(ve.interpolation, Interpolation::bicubic);
  EXPECT_EQ(ve.std, (std::array<double, 3>{0.5, 0.5, 0.5}));

  // Other input sizes scale the resize with the crop: floor(384/0.9) = 426, floor(384*256/224) = 438.
  EXPECT_EQ(preprocess_preset("timm-deit", 384).resize_shorter, 426);
  EXPECT_EQ(preprocess_preset("timm-deit", 384).crop_width, 384);
  EXPECT_EQ(preprocess_preset("dino", 384).resize_shorter, 438);
  EXPECT_EQ(preprocess_preset("hf", 384).resize_width, 384);

  try {
    preprocess_preset("deit");
    ADD_FAILURE() << "unknown preset accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("timm-deit"), std::string::npos) << e.what();
  }
  EXPECT_THROW(preprocess_preset("hf", 0), InputError);
}

TEST(ImagePreprocess, SizesAfterResizeAndCropForA300x200Image) {
  const cv::Mat landscape = coordinate_image(300, 200);  // W x H
  struct Case {
    const char* preset;
    int resized_h, resized_w;  // before the crop
  };
  // Shorter side S: 200 -> S, 300 -> int(S * 300 / 200).
  for (const Case& c : {Case{"timm-deit", 248, 372}, Case{"timm-vit", 248, 372}, Case{"dino", 256, 384},
                        Case{"hf", 224, 224}, Case{"vit-explain", 224, 224}}) {
    Preprocess p = preprocess_preset(c.preset);
    const PreprocessedImage full = preprocess(landscape, p);
    EXPECT_EQ(full.tensor.shape, (std::vector<std::int64_t>{3, 224, 224})) << c.preset;
    EXPECT_EQ(full.rgb.size(), cv::Size(224, 224)) << c.preset;
    p.crop_height = p.crop_width = 0;
    EXPECT_EQ(preprocess(landscape, p).rgb.size(), cv::Size(c.resized_w, c.resized_h)) << c.preset;
  }
  // Portrait: the width is the shorter side.
  Preprocess p = preprocess_preset("timm-deit");
  p.crop_height = p.crop_width = 0;
  EXPECT_EQ(preprocess(coordinate_image(200, 300), p).rgb.size(), cv::Size(248, 372));
  // int() truncates: 248 * 301 / 200 = 373.24 -> 373.
  EXPECT_EQ(preprocess(coordinate_image(301, 200), p).rgb.size(), cv::Size(373, 248));
}

TEST(ImagePreprocess, CenterCropRoundsHalfToEven) {
  EXPECT_EQ(center_crop_offset(224, 224), 0);
  EXPECT_EQ(center_crop_offset(225, 224), 0);  // round(0.5) = 0
  EXPECT_EQ(center_crop_offset(227, 224), 2);  // round(1.5) = 2
  EXPECT_EQ(center_crop_offset(248, 224), 12);
  EXPECT_EQ(center_crop_offset(249, 224), 12);  // round(12.5) = 12
  EXPECT_EQ(center_crop_offset(251, 224), 14);  // round(13.5) = 14
  EXPECT_EQ(center_crop_offset(372, 224), 74);
  EXPECT_THROW(center_crop_offset(200, 224), InputError);

  // The crop window really starts there: no resize, 251x249 (WxH) -> 224x224 from (left 14, top 12).
  Preprocess p;
  p.crop_height = p.crop_width = 224;
  const PreprocessedImage out = preprocess(coordinate_image(251, 249), p);
  EXPECT_EQ(out.rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(14, 12, 7));
  EXPECT_EQ(out.rgb.at<cv::Vec3b>(223, 223), cv::Vec3b(14 + 223, 12 + 223, 7));
}

TEST(ImagePreprocess, CropLargerThanImagePadsWithBlackAsTorchvision) {
  Preprocess p;
  p.crop_height = 7;
  p.crop_width = 6;
  const PreprocessedImage out = preprocess(cv::Mat(4, 3, CV_8UC3, cv::Scalar(9, 9, 9)), p);  // 3 wide, 4 high
  ASSERT_EQ(out.rgb.size(), cv::Size(6, 7));
  // Padding: left 1, right 2, top 1, bottom 2 (the odd pixel goes right/bottom).
  EXPECT_EQ(out.rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(out.rgb.at<cv::Vec3b>(1, 1), cv::Vec3b(9, 9, 9));
  EXPECT_EQ(out.rgb.at<cv::Vec3b>(4, 3), cv::Vec3b(9, 9, 9));
  EXPECT_EQ(out.rgb.at<cv::Vec3b>(5, 4), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(out.rgb.at<cv::Vec3b>(4, 4), cv::Vec3b(0, 0, 0));
}

TEST(ImagePreprocess, NormalisesAKnownPixelInFloat32) {
  cv::Mat rgb(2, 2, CV_8UC3, cv::Scalar(0, 0, 0));
  rgb.at<cv::Vec3b>(1, 0) = cv::Vec3b(255, 0, 128);
  Preprocess p;  // no resize, no crop
  p.mean = kImageNetMean;
  p.std = kImageNetStd;
  const PreprocessedImage out = preprocess(rgb, p);
  ASSERT_EQ(out.tensor.shape, (std::vector<std::int64_t>{3, 2, 2}));
  const auto at = [&](int c, int y, int x) { return out.tensor.data[static_cast<std::size_t>(c * 4 + y * 2 + x)]; };
  // ToTensor + Normalize in float32.
  EXPECT_EQ(at(0, 1, 0), static_cast<double>((255.0f / 255.0f - 0.485f) / 0.229f));
  EXPECT_EQ(at(1, 1, 0), static_cast<double>((0.0f - 0.456f) / 0.224f));
  EXPECT_EQ(at(2, 1, 0), static_cast<double>((128.0f / 255.0f - 0.406f) / 0.225f));
  EXPECT_NEAR(at(0, 1, 0), (1.0 - 0.485) / 0.229, 1e-6);   // 2.2489...
  EXPECT_NEAR(at(2, 1, 0), (128.0 / 255 - 0.406) / 0.225, 1e-6);
  EXPECT_NEAR(at(1, 0, 0), -0.456 / 0.224, 1e-6);

  p.mean = {0.5, 0.5, 0.5};
  p.std = {0.5, 0.5, 0.5};
  const PreprocessedImage half = preprocess(rgb, p);
  EXPECT_EQ(half.tensor.data[4], -1.0);  // G plane, pixel (0,0) = 0 -> -1
  EXPECT_EQ(half.tensor.data[2], 1.0);             // R plane, pixel (1,0) = 255 -> 1

  p.std = {0.5, 0.0, 0.5};
  EXPECT_THROW(preprocess(rgb, p), InputError);
  EXPECT_THROW(preprocess(cv::Mat(2, 2, CV_8UC1), Preprocess{}), InputError);
  EXPECT_THROW(preprocess(cv::Mat(), Preprocess{}), InputError);
}

// A 1 x 40,000 grayscale PNG of under 200 bytes (zlib packs the blank rows).
std::string tall_png() {
  std::vector<unsigned char> png;
  EXPECT_TRUE(cv::imencode(".png", cv::Mat(40000, 1, CV_8UC1, cv::Scalar(0)), png, {cv::IMWRITE_PNG_COMPRESSION, 9}));
  return std::string(png.begin(), png.end());
}

// Fuzzing finding: that PNG with --resize 224 (shorter side) asked for 224 x 8,960,000 pixels: 6 GB for the resize,
// 48 GB for the tensor. The resized size is checked against the pixel limit before anything is allocated.
TEST_F(ImageTest, ResizeBeyondThePixelLimitFailsBeforeAllocating) {
  const std::string tall = tall_png();
  ASSERT_LT(tall.size(), 400u);
  const cv::Mat rgb = read_image_rgb(put("tall.png", tall));
  ASSERT_EQ(rgb.rows, 40000);
  Preprocess p;
  parse_resize("224", p);
  std::string msg;
  try {
    preprocess(rgb, p);
  } catch (const InputError& e) {
    msg = e.what();
  }
  EXPECT_EQ(msg, "preprocess: resizing 40000x1 (HxW) to shorter side 224: 224x8960000 (WxH) image (2007040000 pixels) "
                 "exceeds the limit of 33554432 pixels (--max-image-pixels raises it)");
  Preprocess exact;
  parse_resize("65536x65536", exact);
  EXPECT_THROW(preprocess(rgb, exact), InputError);
  Preprocess crop;
  parse_crop("65536", crop);
  EXPECT_THROW(preprocess(rgb, crop), InputError);
  // Within the limit, the same image resizes; the limit can be raised and lowered.
  Preprocess small;
  parse_resize("1", small);
  EXPECT_EQ(preprocess(rgb, small).rgb.rows, 40000);
  set_max_image_pixels(39999);
  EXPECT_THROW(preprocess(rgb, small), InputError);
  EXPECT_THROW(set_max_image_pixels(0), InputError);
  set_max_image_pixels(kDefaultMaxImagePixels);
}

// A PNG whose header declares 65535 x 65535 pixels fails on the header, before the decoder allocates 12 GB.
TEST_F(ImageTest, DeclaredSizeBeyondThePixelLimitFailsBeforeDecoding) {
  std::string png = tall_png();
  for (int i = 0; i < 4; ++i) png[16 + i] = png[20 + i] = i < 2 ? '\0' : '\xff';  // IHDR width, height
  const std::string path = put("huge.png", png);
  EXPECT_EQ(read_error(path), path + ": 65535x65535 (WxH) image (4294836225 pixels) exceeds the limit of 33554432 "
                                     "pixels (--max-image-pixels raises it)");
  // Fuzzing finding: extents whose product passes 2^63 (here 4294967295 x 4278190080) overflowed the check itself.
  for (int i = 0; i < 4; ++i) {
    png[16 + i] = '\xff';
    png[20 + i] = i == 0 ? '\xff' : '\0';
  }
  const std::string wide = put("wide.png", png);
  EXPECT_EQ(read_error(wide), wide + ": 4294967295x4278190080 (WxH) image (18374686475393433600 pixels) exceeds the "
                                     "limit of 33554432 pixels (--max-image-pixels raises it)");
  const std::string small = write_image("small.jpg", cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  set_max_image_pixels(63);
  EXPECT_NE(read_error(small).find("8x8 (WxH) image (64 pixels) exceeds the limit of 63 pixels"), std::string::npos);
  set_max_image_pixels(kDefaultMaxImagePixels);
  EXPECT_EQ(read_image_rgb(small).rows, 8);
}

TEST(ImageOptions, ParsesResizeCropMeanStd) {
  Preprocess p;
  parse_resize("248", p);
  EXPECT_EQ(p.resize, ResizeMode::shorter_side);
  EXPECT_EQ(p.resize_shorter, 248);
  parse_resize("224x200", p);
  EXPECT_EQ(p.resize, ResizeMode::exact);
  EXPECT_EQ(p.resize_height, 224);
  EXPECT_EQ(p.resize_width, 200);
  parse_resize("none", p);
  EXPECT_EQ(p.resize, ResizeMode::none);
  for (const char* bad : {"", "0", "-3", "224x", "x224", "22.4", "224x224x3", "abc", "248px", "99999999999"})
    EXPECT_THROW(parse_resize(bad, p), InputError) << bad;

  parse_crop("224", p);
  EXPECT_EQ(p.crop_height, 224);
  EXPECT_EQ(p.crop_width, 224);
  parse_crop("200x300", p);
  EXPECT_EQ(p.crop_height, 200);
  EXPECT_EQ(p.crop_width, 300);
  parse_crop("none", p);
  EXPECT_EQ(p.crop_height, 0);
  EXPECT_THROW(parse_crop("0x3", p), InputError);

  EXPECT_EQ(parse_channel_values("0.485,0.456,0.406", "--mean", false), kImageNetMean);
  EXPECT_EQ(parse_channel_values("0.485, 0.456, 0.406", "--mean", false), kImageNetMean);
  EXPECT_EQ(parse_channel_values("0.5", "--std", true), (std::array<double, 3>{0.5, 0.5, 0.5}));
  EXPECT_EQ(parse_channel_values("-1,0,1", "--mean", false), (std::array<double, 3>{-1, 0, 1}));
  for (const char* bad : {"", "1,2", "1,2,3,4", "a,b,c", "nan", "1,,2", "inf,1,1"})
    EXPECT_THROW(parse_channel_values(bad, "--mean", false), InputError) << bad;
  EXPECT_THROW(parse_channel_values("0.2,0,0.2", "--std", true), InputError);

  EXPECT_EQ(parse_interpolation("area"), Interpolation::area);
  EXPECT_THROW(parse_interpolation("lanczos"), InputError);
}

TEST_F(ImageTest, LoadsPreprocessedNpyWithShapeChecks) {
  Array a({3, 4, 5});
  for (std::size_t i = 0; i < a.data.size(); ++i) a.data[i] = 0.01 * static_cast<double>(i);
  const std::string ok = put("ok.npy", encode_npy(a));
  const Array back = load_preprocessed_npy(ok, 4, 5);
  EXPECT_EQ(back.shape, a.shape);
  EXPECT_EQ(back.data, a.data);

  Array batched({1, 3, 4, 5});
  batched.data = a.data;
  EXPECT_EQ(load_preprocessed_npy(put("b.npy", encode_npy(batched))).shape, a.shape);

  const std::string four = put("four.npy", encode_npy(Array({4, 4, 5})));
  EXPECT_THROW(load_preprocessed_npy(four), InputError);
  EXPECT_THROW(load_preprocessed_npy(put("flat.npy", encode_npy(Array({60})))), InputError);
  try {
    load_preprocessed_npy(ok, 224, 224);
    ADD_FAILURE() << "size mismatch accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(ok), std::string::npos) << e.what();
  }
  a.data[7] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(load_preprocessed_npy(put("nan.npy", encode_npy(a))), InputError);
  EXPECT_THROW(load_preprocessed_npy((dir_ / "none.npy").string()), InputError);
}

}  // namespace
}  // namespace attnlens
