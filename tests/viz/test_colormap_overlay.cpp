#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "viz/colormap.hpp"
#include "viz/overlay.hpp"

namespace attnlens {
namespace {

namespace fs = std::filesystem;

// Spec section 11: round_half_even(255 * clamp(1.5 - |4x - c|, 0, 1)), x = v/255, c = 3 (R), 2 (G), 1 (B). Twice
// the value is the integer 765 - 2|4v - 255c|, so the rounding is done exactly rather than on a float that may sit
// just off the tie (every unclamped entry is a tie).
int jet_formula(int v, int c) {
  const int twice = std::min(std::max(765 - 2 * std::abs(4 * v - 255 * c), 0), 510);
  const int q = twice / 2;
  return (twice % 2 == 1 && q % 2 == 1) ? q + 1 : q;
}

// The JET entry OpenCV 4.6 actually has, per spec section 11 (BGR).
cv::Vec3b jet_bgr(int v) {
  cv::Vec3b bgr(static_cast<std::uint8_t>(jet_formula(v, 1)), static_cast<std::uint8_t>(jet_formula(v, 2)),
                static_cast<std::uint8_t>(jet_formula(v, 3)));
  if (v == 159) bgr[0] = 1;
  return bgr;
}

Array make_array(std::vector<std::int64_t> shape, std::vector<double> data) {
  Array a(std::move(shape));
  a.data = std::move(data);
  return a;
}

cv::Mat constant_rgb(int h, int w, int r, int g, int b) { return cv::Mat(h, w, CV_8UC3, cv::Scalar(r, g, b)); }

TEST(ColormapJet, AllValuesMatchSpecFormula) {
  cv::Mat ramp(1, 256, CV_8U);
  for (int v = 0; v < 256; ++v) ramp.at<std::uint8_t>(0, v) = static_cast<std::uint8_t>(v);
  const cv::Mat jet = apply_colormap(ramp, Colormap::jet);
  ASSERT_EQ(jet.type(), CV_8UC3);
  for (int v = 0; v < 256; ++v) {
    const cv::Vec3b got = jet.at<cv::Vec3b>(0, v);
    for (int ch = 0; ch < 3; ++ch) {
      int expected = jet_formula(v, ch + 1);  // BGR slots: c = 1 (B), 2 (G), 3 (R)
      // The one entry where OpenCV 4.6's table is not the rounded formula (its table comes from float
      // interpolation, and 1.5 lands just under the tie): B = 1 where round_half_even(1.5) = 2.
      if (v == 159 && ch == 0) expected = 1;
      EXPECT_EQ(got[ch], expected) << "v=" << v << " channel(BGR)=" << ch;
    }
  }
  EXPECT_EQ(jet.at<cv::Vec3b>(0, 0), cv::Vec3b(128, 0, 0));    // RGB (0,0,128)
  EXPECT_EQ(jet.at<cv::Vec3b>(0, 255), cv::Vec3b(0, 0, 128));  // RGB (128,0,0)
}

TEST(ColormapViridis, EndpointsAreMatplotlibs) {
  cv::Mat ends = (cv::Mat_<std::uint8_t>(1, 3) << 0, 128, 255);
  const cv::Mat v = apply_colormap(ends, Colormap::viridis);
  // matplotlib viridis(0), viridis(128/255), viridis(1) rounded to 8 bits, in BGR.
  EXPECT_EQ(v.at<cv::Vec3b>(0, 0), cv::Vec3b(84, 1, 68));
  EXPECT_EQ(v.at<cv::Vec3b>(0, 1), cv::Vec3b(140, 145, 33));
  EXPECT_EQ(v.at<cv::Vec3b>(0, 2), cv::Vec3b(37, 231, 253));
}

TEST(ColormapTruncation, ScalesInFloat32AndTruncates) {
  const cv::Mat in = (cv::Mat_<float>(1, 8) << 0.0f, 0.5f, 0.999f, 1.0f, -0.2f, 1.7f,
                      std::numeric_limits<float>::quiet_NaN(), 0.0625f);
  const cv::Mat u8 = to_u8_truncated(in);
  const std::vector<int> expected{0, 127, 254, 255, 0, 255, 0, 15};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(u8.at<std::uint8_t>(0, i), expected[i]) << i;
  EXPECT_THROW(to_u8_truncated(cv::Mat(2, 2, CV_8U)), InputError);
}

TEST(ColormapMinMax, NormalisesAndHandlesConstant) {
  const cv::Mat m = minmax_normalize((cv::Mat_<double>(1, 3) << 2.0, 4.0, 3.0));
  EXPECT_FLOAT_EQ(m.at<float>(0, 0), 0.0f);
  EXPECT_FLOAT_EQ(m.at<float>(0, 1), 1.0f);
  EXPECT_FLOAT_EQ(m.at<float>(0, 2), 0.5f);
  const cv::Mat c = minmax_normalize(cv::Mat(2, 2, CV_32F, cv::Scalar(7)));
  EXPECT_EQ(cv::countNonZero(c), 0);
  EXPECT_EQ(parse_colormap("viridis"), Colormap::viridis);
  EXPECT_THROW(parse_colormap("hot"), InputError);
}

TEST(OverlayVitExplain, ConstantGrayConstantMaskByHand) {
  // mask 0.5 -> uint8(127.5) = 127 -> JET(127) = RGB(126, 255, 130) by the spec formula (125.5 -> 126, 380.5 -> 255
  // clamped, 129.5 -> 130). cam (BGR) = (130+100, 255+100, 126+100)/255; the maximum is G = 355/255, so
  // out = uint8(255 * (230/355, 1, 226/355)) = (165, 255, 162): 165.21 and 162.34 truncated.
  const cv::Mat out = overlay_vit_explain(constant_rgb(6, 6, 100, 100, 100), Array({2, 2}, 0.5));
  ASSERT_EQ(out.type(), CV_8UC3);
  ASSERT_EQ(out.size(), cv::Size(6, 6));
  EXPECT_EQ(jet_bgr(127), cv::Vec3b(130, 255, 126));
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 6; ++x) ASSERT_EQ(out.at<cv::Vec3b>(y, x), cv::Vec3b(165, 255, 162)) << y << "," << x;
}

TEST(OverlayVitExplain, BilinearUpsamplingByHand) {
  // 2x2 -> 4x4 with half-pixel centres: source coordinates -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the
  // last sample), so each axis gives [a, .75a+.25b, .25a+.75b, b].
  const Array mask = make_array({2, 2}, {0.0, 0.25, 0.5, 1.0});
  const cv::Mat up = upsample_bilinear(mask, cv::Size(4, 4));
  const double expected[4][4] = {{0.0, 0.0625, 0.1875, 0.25},
                                 {0.125, 0.203125, 0.359375, 0.4375},
                                 {0.375, 0.484375, 0.703125, 0.8125},
                                 {0.5, 0.625, 0.875, 1.0}};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_EQ(up.at<float>(y, x), expected[y][x]) << y << "," << x;
}

TEST(OverlayVitExplain, TwoByTwoMaskOnFourByFourImageMatchesNumpy) {
  // Expected pixels from an independent NumPy re-implementation of vit_explain.py's show_mask_on_image (float32
  // arithmetic, bilinear resize written out with half-pixel centres and edge clamping, JET from the spec formula with
  // the v = 159 entry; python3-opencv is not installed here). The mask reaches uint8 values 0..255 including 159.
  //   rgb[y,x] = (30+50x, 200-40y, 10+20x+30y); m = bilinear(mask, 4, 4); heat = JET(np.uint8(255*m))
  //   img = np.float32(rgb[:,:,::-1]) / 255; cam = np.float32(heat)/255 + img; cam /= np.max(cam)
  //   out = np.uint8(255 * cam)
  const Array mask = make_array({2, 2}, {0.0, 0.25, 0.5, 1.0});
  cv::Mat rgb(4, 4, CV_8UC3);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      rgb.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<std::uint8_t>(30 + 50 * x), static_cast<std::uint8_t>(200 - 40 * y),
                    static_cast<std::uint8_t>(10 + 20 * x + 30 * y));
  const int expected[16][3] = {{80, 117, 17},   {127, 117, 46},  {178, 152, 76}, {190, 189, 105},
                               {171, 93, 17},   {184, 138, 46},  {196, 232, 76}, {172, 243, 141},
                               {190, 218, 17},  {138, 219, 111}, {64, 173, 225}, {76, 107, 255},
                               {134, 196, 91},  {70, 196, 195},  {82, 46, 225},  {93, 46, 180}};
  const cv::Mat out = overlay_vit_explain(rgb, mask);
  for (int i = 0; i < 16; ++i)
    EXPECT_EQ(out.at<cv::Vec3b>(i / 4, i % 4), cv::Vec3b(static_cast<std::uint8_t>(expected[i][0]),
                                                         static_cast<std::uint8_t>(expected[i][1]),
                                                         static_cast<std::uint8_t>(expected[i][2])))
        << "pixel " << i / 4 << "," << i % 4;
}

TEST(OverlayVitExplain, RejectsBadInputs) {
  EXPECT_THROW(overlay_vit_explain(cv::Mat(), Array({2, 2})), InputError);
  EXPECT_THROW(overlay_vit_explain(cv::Mat(4, 4, CV_8UC1), Array({2, 2})), InputError);
  EXPECT_THROW(overlay_vit_explain(constant_rgb(4, 4, 1, 2, 3), Array({4})), InputError);
  EXPECT_THROW(overlay_vit_explain(constant_rgb(4, 4, 1, 2, 3), Array({0, 2})), InputError);
}

TEST(OverlayVitExplain, ValuesOutsideUnitRangeClamp) {
  const cv::Mat a = overlay_vit_explain(constant_rgb(2, 2, 10, 20, 30), Array({1, 1}, 3.0));
  const cv::Mat b = overlay_vit_explain(constant_rgb(2, 2, 10, 20, 30), Array({1, 1}, 1.0));
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0.0);
}

TEST(OverlayChefer, ConstantMaskAndColourSwapByHand) {
  // A constant mask min-max normalises to 0 -> JET(0) = BGR(128, 0, 0). Photo RGB (50, 100, 150) min-max
  // normalised over all channels: (0, .5, 1). True colours, BGR slots: cam = (128/255 + 1, .5, 0), max = 383/255,
  // out = uint8(255 * (1, 127.5/383, 0)) = (255, 84, 0) (84.88 truncated).
  const cv::Mat rgb = constant_rgb(3, 3, 50, 100, 150);
  const cv::Mat out = overlay_chefer(rgb, Array({2, 2}, 0.3));
  EXPECT_EQ(out.at<cv::Vec3b>(1, 1), cv::Vec3b(255, 84, 0));
  // Their notebook's picture: the RGB photo in the BGR slots: cam = (128/255 + 0, .5, 1), max = 1 ->
  // out = uint8(255 * (128/255, 0.5, 1)) = (128, 127, 255) (float32 255 * (128/255) is exactly 128).
  const cv::Mat swapped = overlay_chefer(rgb, Array({2, 2}, 0.3), true);
  EXPECT_EQ(swapped.at<cv::Vec3b>(1, 1), cv::Vec3b(128, 127, 255));
}

TEST(OverlayDinoMask, BlendTruncatesAndOutlines) {
  const cv::Mat rgb = constant_rgb(4, 4, 101, 150, 200);
  const Array mask = make_array({2, 2}, {1, 0, 0, 0});
  MaskOverlayOptions no_outline;
  no_outline.contour = false;
  const cv::Mat out = overlay_dino_mask(rgb, mask, no_outline);
  // Masked (top-left 2x2 block, NEAREST upsampling): R = 101*.5 + .5*255 = 178; G = 75; B = 100. BGR order out.
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      const cv::Vec3b expected = (y < 2 && x < 2) ? cv::Vec3b(100, 75, 178) : cv::Vec3b(200, 150, 101);
      EXPECT_EQ(out.at<cv::Vec3b>(y, x), expected) << y << "," << x;
    }
  // Odd value: 101*.5 = 50.5 truncates to 50 for a zero colour component.
  MaskOverlayOptions green = no_outline;
  green.colour = {0.0, 1.0, 0.0};
  EXPECT_EQ(overlay_dino_mask(rgb, mask, green).at<cv::Vec3b>(0, 0), cv::Vec3b(100, 202, 50));

  const cv::Mat outlined = overlay_dino_mask(constant_rgb(8, 8, 101, 150, 200), mask);
  EXPECT_EQ(outlined.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255));  // border of the 4x4 masked block: red line
  EXPECT_EQ(outlined.at<cv::Vec3b>(3, 3), cv::Vec3b(0, 0, 255));
  EXPECT_EQ(outlined.at<cv::Vec3b>(1, 1), cv::Vec3b(100, 75, 178));  // inside: blended only
  EXPECT_EQ(outlined.at<cv::Vec3b>(6, 6), cv::Vec3b(200, 150, 101)); // outside: untouched
}

TEST(OverlayNearest, WholeFactorsGiveExactBlocks) {
  cv::Mat grid(16, 16, CV_8U);
  for (int i = 0; i < 256; ++i) grid.at<std::uint8_t>(i / 16, i % 16) = static_cast<std::uint8_t>(i);
  const cv::Mat up = upsample_nearest(grid, cv::Size(224, 224));  // patch 14: 1/14 is not a binary fraction
  for (int y = 0; y < 224; ++y)
    for (int x = 0; x < 224; ++x) ASSERT_EQ(up.at<std::uint8_t>(y, x), (y / 14) * 16 + x / 14) << y << "," << x;
}

TEST(OverlayHeadGrid, LayoutColoursAndErrors) {
  std::vector<Array> maps{make_array({2, 2}, {0, 1, 2, 3}), make_array({2, 2}, {5, 5, 5, 6}),
                          make_array({2, 2}, {1, 0, 0, 0})};
  HeadGridOptions opt;
  opt.cell = 40;
  const cv::Mat grid = head_grid(maps, {"head 0", "head 1", "a long title that must be shortened"}, {}, opt);
  // 2 columns (ceil(sqrt(3))), 2 rows; gap 4, label 16.
  EXPECT_EQ(grid.cols, 4 + 2 * (40 + 4));
  EXPECT_EQ(grid.rows, 4 + 2 * (16 + 40 + 4));
  const cv::Vec3b lo(84, 1, 68), hi(37, 231, 253);  // viridis ends, BGR
  // Map 0's minimum is its top-left patch, maximum bottom-right.
  EXPECT_EQ(grid.at<cv::Vec3b>(4 + 16 + 5, 4 + 5), lo);
  EXPECT_EQ(grid.at<cv::Vec3b>(4 + 16 + 35, 4 + 35), hi);
  // Map 2 (third cell: second row, first column): maximum top-left.
  EXPECT_EQ(grid.at<cv::Vec3b>(4 + 60 + 16 + 5, 4 + 5), hi);

  Array stacked({3, 2, 2});
  for (int i = 0; i < 3; ++i) std::copy(maps[i].data.begin(), maps[i].data.end(), stacked.data.begin() + 4 * i);
  const cv::Mat grid2 = head_grid(stacked, {"head 0", "head 1", "a long title that must be shortened"}, Array(), opt);
  EXPECT_EQ(cv::norm(grid, grid2, cv::NORM_INF), 0.0);

  Array masks({3, 2, 2}, 0.0);
  masks.data[0] = 1.0;
  const cv::Mat with_masks = head_grid(stacked, {}, masks, opt);
  EXPECT_EQ(with_masks.at<cv::Vec3b>(4 + 16, 4), cv::Vec3b(0, 0, 255));  // outline corner of head 0's mask

  EXPECT_THROW(head_grid(maps, {"only one"}, {}, opt), InputError);
  EXPECT_THROW(head_grid(std::vector<Array>{make_array({2, 2}, {0, 1, 2, 3}), Array({3, 2})}), InputError);
  EXPECT_THROW(head_grid(std::vector<Array>{}), InputError);
  EXPECT_THROW(head_grid(Array({2, 2})), InputError);
}

TEST(OverlayBase64, KnownVectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("Man"), "TWFu");
  EXPECT_EQ(base64_encode("Ma"), "TWE=");
  EXPECT_EQ(base64_encode("M"), "TQ==");
  // RFC 4648 section 10.
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

class OverlayPng : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("attnlens_png_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(OverlayPng, WritesReadableFileAndDataUri) {
  cv::Mat img(3, 5, CV_8UC3);
  for (int i = 0; i < 15; ++i) img.at<cv::Vec3b>(i / 5, i % 5) = cv::Vec3b(i, 2 * i, 3 * i);
  const std::string path = (dir_ / "sub" / "out.png").string();
  write_png(path, img);
  const cv::Mat back = cv::imread(path, cv::IMREAD_UNCHANGED);
  ASSERT_EQ(back.type(), CV_8UC3);
  EXPECT_EQ(cv::norm(img, back, cv::NORM_INF), 0.0);
  for (const auto& e : fs::directory_iterator(dir_ / "sub")) EXPECT_EQ(e.path().filename(), "out.png");

  const std::string uri = png_data_uri(img);
  EXPECT_EQ(uri.rfind("data:image/png;base64,", 0), 0u);
  EXPECT_EQ(uri.substr(22, 8), base64_encode("\x89PNG\r\n"));  // the PNG signature
  EXPECT_EQ(uri.substr(22), base64_encode(encode_png(img)));
}

TEST_F(OverlayPng, ErrorsAreInputErrors) {
  const std::string blocker = (dir_ / "file").string();
  std::ofstream(blocker) << "x";
  try {
    write_png(blocker + "/out.png", cv::Mat(2, 2, CV_8UC3, cv::Scalar::all(0)));
    ADD_FAILURE() << "write_png wrote under a regular file";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(blocker + "/out.png"), std::string::npos) << e.what();
  }
  EXPECT_THROW(write_png((dir_ / "empty.png").string(), cv::Mat()), InputError);
  EXPECT_THROW(encode_png(cv::Mat(2, 2, CV_32FC3)), InputError);
  EXPECT_FALSE(fs::exists(dir_ / "empty.png"));
}

}  // namespace
}  // namespace attnlens
