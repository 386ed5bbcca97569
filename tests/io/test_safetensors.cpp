#include <gtest/gtest.h>

#include <unistd.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"

namespace attnlens {
namespace {

namespace fs = std::filesystem;

const std::string kName = "x.safetensors";

std::string le(std::uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

std::string le_f32(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  return le(u, 4);
}

std::string le_f64(double v) {
  std::uint64_t u;
  std::memcpy(&u, &v, 8);
  return le(u, 8);
}

// A file from a literal header and buffer, with no padding, so each test controls every byte.
std::string file_of(const std::string& header, const std::string& buffer = "") {
  return le(header.size(), 8) + header + buffer;
}

// One-tensor header: {"t": {"dtype": ..., "shape": ..., "data_offsets": ...}}.
std::string one(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return R"({"t":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}";
}

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The InputError message for `bytes`; fails the test when they are accepted or the message does not start with
// the file name.
std::string error_for(const std::string& bytes) {
  try {
    SafetensorsFile::from_bytes(bytes, kName);
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(kName + ": ", 0), 0u) << "message does not start with the file name: " << msg;
    return msg;
  }
  ADD_FAILURE() << "from_bytes accepted a bad file";
  return "";
}

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

std::vector<std::int64_t> dims(std::initializer_list<std::int64_t> d) { return d; }

Array array_of(std::vector<std::int64_t> shape, std::vector<double> data) {
  Array a;
  a.shape = std::move(shape);
  a.data = std::move(data);
  return a;
}

bool have_numpy() { return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

class SafetensorsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("attnlens_st_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string slurp(const std::string& name) const {
    std::ifstream in(path(name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  // Writes `script` to the test folder and runs it with the folder as argv[1]; true when it exits 0.
  bool run_python(const std::string& script) const {
    std::ofstream(path("script.py")) << script;
    const std::string cmd = "/usr/bin/python3 '" + path("script.py") + "' '" + dir_.string() + "'";
    return std::system(cmd.c_str()) == 0;
  }

  fs::path dir_;
};

// ---- writer and round trips ----

TEST(SafetensorsRoundTrip, EncodeThenFromBytesKeepsNamesShapesValuesAndOrder) {
  const Array w = array_of({2, 3}, {1.5, -2.25, 0.0, 1e-3, 65504.0, -1e30});
  const Array b = array_of({4}, {0.1, 0.2, 0.3, 0.4});
  const Array scalar = array_of({}, {7.0});
  const Array empty = array_of({0, 5}, {});
  const std::string bytes = encode_safetensors({{"zeta.weight", w}, {"alpha.bias", b}, {"empty", empty},
                                                {"scalar", scalar}},
                                               {{"format", "pt"}});
  const SafetensorsFile f = SafetensorsFile::from_bytes(bytes, kName);

  // Byte-buffer order, which for this writer is the given order (the empty tensor ties nothing here).
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.tensors()[0].name, "zeta.weight");
  EXPECT_EQ(f.tensors()[1].name, "alpha.bias");
  EXPECT_EQ(f.tensors()[2].name, "empty");
  EXPECT_EQ(f.tensors()[3].name, "scalar");

  const TensorInfo& wi = f.at("zeta.weight");
  EXPECT_EQ(wi.dtype, "F32");
  EXPECT_EQ(wi.shape, dims({2, 3}));
  EXPECT_EQ(wi.begin, 0u);
  EXPECT_EQ(wi.end, 24u);
  EXPECT_EQ(wi.numel(), 6);
  const std::vector<float> wv = f.to_float("zeta.weight");
  ASSERT_EQ(wv.size(), 6u);
  for (std::size_t i = 0; i < wv.size(); ++i) EXPECT_EQ(wv[i], static_cast<float>(w.data[i])) << i;

  const std::vector<float> bv = f.to_float("alpha.bias");
  ASSERT_EQ(bv.size(), 4u);
  EXPECT_EQ(bv[2], 0.3f);
  EXPECT_EQ(f.at("alpha.bias").begin, 24u);
  EXPECT_EQ(f.at("alpha.bias").end, 40u);

  EXPECT_EQ(f.at("empty").shape, dims({0, 5}));
  EXPECT_EQ(f.at("empty").begin, f.at("empty").end);
  EXPECT_TRUE(f.to_float("empty").empty());

  EXPECT_TRUE(f.at("scalar").shape.empty());
  EXPECT_EQ(f.at("scalar").numel(), 1);
  EXPECT_EQ(f.to_float("scalar"), std::vector<float>{7.0f});

  ASSERT_EQ(f.metadata().size(), 1u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.bytes("alpha.bias"), le_f32(0.1f) + le_f32(0.2f) + le_f32(0.3f) + le_f32(0.4f));
}

TEST_F(SafetensorsFileTest, RoundTripThroughARealFile) {
  Array a({3, 4});
  for (std::size_t i = 0; i < a.data.size(); ++i) a.data[i] = std::sin(static_cast<double>(i)) * 10.0;
  const std::string p = path("model.safetensors");
  write_file_atomic(p, encode_safetensors({{"blocks.0.attn.qkv.weight", a}}, {{"epoch", "3"}}));

  const SafetensorsFile f = SafetensorsFile::open(p);
  const TensorInfo& t = f.at("blocks.0.attn.qkv.weight");
  EXPECT_EQ(t.shape, dims({3, 4}));
  const std::vector<float> v = f.to_float(t.name);
  ASSERT_EQ(v.size(), 12u);
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i], static_cast<float>(a.data[i])) << i;
  EXPECT_EQ(f.metadata().at("epoch"), "3");

  // Messages name the path the file was opened with.
  try {
    f.at("head.weight");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), p + ": missing tensor 'head.weight'");
  }
}

TEST_F(SafetensorsFileTest, OpenReportsMissingFilesAndDirectories) {
  const std::string missing = path("nope.safetensors");
  try {
    SafetensorsFile::open(missing);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot open " + missing + ": No such file or directory");
  }
  try {
    SafetensorsFile::open(dir_.string());
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), dir_.string())) << e.what();
  }
}

// Byte strings from the reference implementation's own serialisation tests (huggingface/safetensors tensor.rs).
TEST(SafetensorsWriter, MatchesTheReferenceWritersBytes) {
  const std::string no_tensors = encode_safetensors({}, {{"framework", "pt"}});
  EXPECT_EQ(no_tensors, le(40, 8) + R"({"__metadata__":{"framework":"pt"}})" + "     ");

  EXPECT_EQ(encode_safetensors({}), le(8, 8) + "{}      ");

  const Array a = array_of({1, 1, 2, 3}, {0, 1, 2, 3, 4, 5});
  std::string data;
  for (float v : {0.f, 1.f, 2.f, 3.f, 4.f, 5.f}) data += le_f32(v);
  EXPECT_EQ(encode_safetensors({{"attn0", a}}),
            le(72, 8) + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" + "       " + data);
  const Array b = array_of({1, 2, 3}, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(encode_safetensors({{"attn.0", b}}),
            le(64, 8) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" + data);
}

TEST(SafetensorsWriter, PadsTheHeaderWithSpacesToAMultipleOf8) {
  for (int len = 1; len <= 16; ++len) {
    const std::string name(static_cast<std::size_t>(len), 'n');
    const std::string bytes = encode_safetensors({{name, array_of({1}, {2.0})}});
    std::uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
    EXPECT_EQ(n % 8, 0u) << len;
    ASSERT_EQ(bytes.size(), 8 + n + 4) << len;
    const std::string header = bytes.substr(8, n);
    const std::size_t close = header.rfind('}');
    EXPECT_LT(n - (close + 1), 8u);
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << header;
    EXPECT_EQ(SafetensorsFile::from_bytes(bytes, kName).to_float(name), std::vector<float>{2.0f});
  }
}

TEST(SafetensorsWriter, EscapesNamesAndMetadata) {
  const std::string name = "quote\" back\\slash \xc3\xbc";
  const std::string bytes = encode_safetensors({{name, array_of({1}, {1.0})}}, {{"k\n", "v\"\t"}});
  const SafetensorsFile f = SafetensorsFile::from_bytes(bytes, kName);
  ASSERT_NE(f.find(name), nullptr);
  EXPECT_EQ(f.metadata().at("k\n"), "v\"\t");
}

TEST(SafetensorsWriter, RejectsBadInput) {
  const Array one = array_of({1}, {1.0});
  EXPECT_THROW(encode_safetensors({{"a", one}, {"a", one}}), std::invalid_argument);
  EXPECT_THROW(encode_safetensors({{"__metadata__", one}}), std::invalid_argument);
  EXPECT_THROW(encode_safetensors({{"a", array_of({2, 2}, {1, 2, 3})}}), std::invalid_argument);
  EXPECT_THROW(encode_safetensors({{"a", array_of({-1}, {})}}), std::invalid_argument);
  EXPECT_THROW(encode_safetensors({{"bad\xff", one}}), std::invalid_argument);
  try {
    encode_safetensors({{"w", array_of({3}, {1.0, 2.0, 1e300})}});
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), "'w'")) << e.what();
    EXPECT_TRUE(has(e.what(), "index 2")) << e.what();
  }
  // Infinity and NaN are values float32 has; just above FLT_MAX still rounds to FLT_MAX.
  const double above = static_cast<double>(FLT_MAX) * (1 + 1e-9);
  const std::string bytes = encode_safetensors(
      {{"w", array_of({3}, {std::numeric_limits<double>::infinity(), std::nan(""), above})}});
  const std::vector<float> v = SafetensorsFile::from_bytes(bytes, kName).to_float("w");
  EXPECT_TRUE(std::isinf(v[0]) && v[0] > 0);
  EXPECT_TRUE(std::isnan(v[1]));
  EXPECT_EQ(v[2], FLT_MAX);
}

// ---- dtype conversions ----

TEST(SafetensorsConvert, F16BitsConvertExactly) {
  const std::vector<std::uint16_t> halves = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400,
                                             0x7C00, 0xFC00, 0x8000, 0x3555, 0x8001, 0x7E00};
  std::string buffer;
  for (std::uint16_t h : halves) buffer += le(h, 2);
  const std::string header = one("F16", "[12]", "[0,24]");
  const std::vector<float> v = SafetensorsFile::from_bytes(file_of(header, buffer), kName).to_float("t");
  ASSERT_EQ(v.size(), 12u);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -2.0f);
  EXPECT_EQ(v[2], 65504.0f);
  EXPECT_EQ(v[3], std::ldexp(1.0f, -24));             // smallest subnormal
  EXPECT_EQ(v[4], std::ldexp(1023.0f, -24));          // largest subnormal
  EXPECT_EQ(v[5], std::ldexp(1.0f, -14));             // smallest normal
  EXPECT_EQ(v[6], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[7], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(bits_of(v[8]), 0x80000000u);              // -0 keeps its sign
  EXPECT_EQ(v[9], 0.333251953125f);                   // 0x3555: 1 + 341/1024, times 2^-2
  EXPECT_EQ(v[10], -std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isnan(v[11]));
}

TEST(SafetensorsConvert, BF16BitsConvertExactly) {
  std::string buffer;
  for (std::uint16_t h : {0x3F80, 0xC040, 0x7F80, 0x0001, 0x7FC0, 0x4049}) buffer += le(h, 2);
  const std::vector<float> v =
      SafetensorsFile::from_bytes(file_of(one("BF16", "[2,3]", "[0,12]"), buffer), kName).to_float("t");
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -3.0f);
  EXPECT_EQ(v[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[3], std::ldexp(1.0f, -133));  // bf16 has float's exponent range, subnormals included
  EXPECT_TRUE(std::isnan(v[4]));
  EXPECT_EQ(v[5], 3.140625f);
}

TEST(SafetensorsConvert, F64RoundsToNearestFloat) {
  const double just_above = static_cast<double>(FLT_MAX) * (1 + 1e-9);
  const std::string buffer = le_f64(0.1) + le_f64(-1e300) + le_f64(1e300) + le_f64(just_above) + le_f64(1e-50);
  const std::vector<float> v =
      SafetensorsFile::from_bytes(file_of(one("F64", "[5]", "[0,40]"), buffer), kName).to_float("t");
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[0], 0.1f);
  EXPECT_EQ(v[1], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[3], FLT_MAX);
  EXPECT_EQ(v[4], 0.0f);
}

TEST(SafetensorsConvert, IntegersToInt64) {
  const std::int64_t lo = std::numeric_limits<std::int64_t>::min(), hi = std::numeric_limits<std::int64_t>::max();
  std::string i64;
  for (std::int64_t v : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, std::int64_t{196}, lo, hi})
    i64 += le(static_cast<std::uint64_t>(v), 8);
  const std::string header =
      R"({"position_ids":{"dtype":"I64","shape":[1,6],"data_offsets":[0,48]},)"
      R"("i32":{"dtype":"I32","shape":[2],"data_offsets":[48,56]},)"
      R"("i16":{"dtype":"I16","shape":[1],"data_offsets":[56,58]},)"
      R"("i8":{"dtype":"I8","shape":[2],"data_offsets":[58,60]},)"
      R"("u8":{"dtype":"U8","shape":[1],"data_offsets":[60,61]},)"
      R"("mask":{"dtype":"BOOL","shape":[2],"data_offsets":[61,63]},)"
      R"("u8b":{"dtype":"U8","shape":[1],"data_offsets":[63,64]}})";
  const std::string buffer = i64 + le(0xFFFFFFFFu, 4) + le(2147483647u, 4) + le(0xFFFE, 2) + le(0x80, 1) +
                             le(0x7F, 1) + le(0xFF, 1) + le(1, 1) + le(0, 1) + le(3, 1);
  const SafetensorsFile f = SafetensorsFile::from_bytes(file_of(header, buffer), kName);
  EXPECT_EQ(f.at("position_ids").shape, dims({1, 6}));
  EXPECT_EQ(f.to_int64("position_ids"), (std::vector<std::int64_t>{0, 1, -1, 196, lo, hi}));
  EXPECT_EQ(f.to_int64("i32"), (std::vector<std::int64_t>{-1, 2147483647}));
  EXPECT_EQ(f.to_int64("i16"), (std::vector<std::int64_t>{-2}));
  EXPECT_EQ(f.to_int64("i8"), (std::vector<std::int64_t>{-128, 127}));
  EXPECT_EQ(f.to_int64("u8"), (std::vector<std::int64_t>{255}));
  EXPECT_EQ(f.to_int64("mask"), (std::vector<std::int64_t>{1, 0}));
  EXPECT_EQ(f.to_int64("u8b"), (std::vector<std::int64_t>{3}));
}

TEST(SafetensorsConvert, WrongDtypeNamesTensorAndDtype) {
  const std::string header = R"({"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
                             R"("w":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                             R"("q":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[12,13]}})";
  const SafetensorsFile f = SafetensorsFile::from_bytes(file_of(header, std::string(13, '\0')), kName);
  const auto message = [](auto&& call) {
    try {
      call();
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string a = message([&] { f.to_float("ids"); });
  EXPECT_TRUE(has(a, kName + ": tensor 'ids' has dtype I64")) << a;
  const std::string b = message([&] { f.to_int64("w"); });
  EXPECT_TRUE(has(b, kName + ": tensor 'w' has dtype F32")) << b;
  const std::string c = message([&] { f.to_float("q"); });
  EXPECT_TRUE(has(c, "'q' has dtype F8_E4M3")) << c;
  EXPECT_EQ(f.bytes("q").size(), 1u);  // unconverted dtypes stay readable as bytes
}

// ---- lookup and metadata ----

TEST(SafetensorsLookup, MissingTensor) {
  const SafetensorsFile f = SafetensorsFile::from_bytes(encode_safetensors({{"cls_token", array_of({1}, {0})}}), kName);
  EXPECT_NE(f.find("cls_token"), nullptr);
  EXPECT_EQ(f.find("blocks.0.attn.qkv.weight"), nullptr);
  try {
    f.at("blocks.0.attn.qkv.weight");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "x.safetensors: missing tensor 'blocks.0.attn.qkv.weight'");
  }
  EXPECT_THROW(f.to_float("nope"), InputError);
  EXPECT_THROW(f.to_int64("nope"), InputError);
}

TEST(SafetensorsLookup, TensorsComeInByteBufferOrderNotHeaderOrder) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                             R"("m":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const SafetensorsFile f = SafetensorsFile::from_bytes(file_of(header, le_f32(1.f) + le_f32(2.f)), kName);
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensors()[0].name, "b");
  EXPECT_EQ(f.tensors()[1].name, "m");
  EXPECT_EQ(f.tensors()[2].name, "a");
  EXPECT_EQ(f.to_float("a"), std::vector<float>{2.f});
  EXPECT_EQ(f.to_float("b"), std::vector<float>{1.f});
}

TEST(SafetensorsMetadata, ParsesStringValues) {
  const std::string header = R"({"__metadata__":{"format":"pt","note":"\u00fcber \"q\""},)"
                             R"("t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  const SafetensorsFile f = SafetensorsFile::from_bytes(file_of(header, "ab"), kName);
  ASSERT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "\xc3\xbc" "ber \"q\"");
  ASSERT_EQ(f.tensors().size(), 1u);  // __metadata__ is not a tensor

  EXPECT_TRUE(SafetensorsFile::from_bytes(file_of(R"({"__metadata__":null})"), kName).metadata().empty());
  EXPECT_TRUE(SafetensorsFile::from_bytes(file_of("{}"), kName).metadata().empty());
}

TEST(SafetensorsValidation, AcceptsEmptyFilesAndEmptyTensors) {
  const SafetensorsFile none = SafetensorsFile::from_bytes(file_of("{}  \n"), kName);
  EXPECT_TRUE(none.tensors().empty());
  const std::string header = R"({"e1":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},)"
                             R"("e2":{"dtype":"I64","shape":[4,0],"data_offsets":[0,0]}})";
  const SafetensorsFile f = SafetensorsFile::from_bytes(file_of(header), kName);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_TRUE(f.to_float("e1").empty());
  EXPECT_TRUE(f.to_int64("e2").empty());
  // An extent 0 makes the tensor empty even when the other extents would overflow.
  const std::string huge = one("F32", "[9223372036854775807,9223372036854775807,0]", "[0,0]");
  EXPECT_EQ(SafetensorsFile::from_bytes(file_of(huge), kName).at("t").numel(), 0);
}

// ---- validation: one problem per test ----

TEST(SafetensorsValidation, FileShorterThan8Bytes) {
  EXPECT_TRUE(has(error_for("\x02\0\0\0{}"), "fewer than the 8-byte header size"));
  EXPECT_TRUE(has(error_for(""), "0 bytes"));
}

TEST(SafetensorsValidation, HeaderSizeOver100MB) {
  EXPECT_TRUE(has(error_for(le(100'000'001, 8) + "{}"), "header size 100000001 exceeds the 100000000-byte limit"));
  EXPECT_TRUE(has(error_for(le(~std::uint64_t{0}, 8) + "{}"), "exceeds"));
}

TEST(SafetensorsValidation, HeaderSizeBeyondTheFile) {
  const std::string msg = error_for(le(100, 8) + "{}");
  EXPECT_TRUE(has(msg, "header size 100 runs past the end of the 10-byte file")) << msg;
}

TEST(SafetensorsValidation, HeaderNotValidJson) {
  EXPECT_TRUE(has(error_for(file_of(R"({"t": {"dtype": "F32",)")), "header is not valid JSON"));
  EXPECT_TRUE(has(error_for(file_of("{} trailing")), "header is not valid JSON"));
  EXPECT_TRUE(has(error_for(file_of(std::string("{}\0\0", 4))), "header is not valid JSON"));
  // The reference insists on UTF-8.
  EXPECT_TRUE(has(error_for(file_of(one("F32", "[0]", "[0,0]").replace(2, 1, "\xff"))), "header is not valid JSON"));
}

TEST(SafetensorsValidation, HeaderNotAnObject) {
  EXPECT_TRUE(has(error_for(file_of("[1, 2]")), "header is not a JSON object"));
  EXPECT_TRUE(has(error_for(file_of("\"text\"")), "header is not a JSON object"));
}

TEST(SafetensorsValidation, HeaderNotStartingWithBrace) {
  EXPECT_TRUE(has(error_for(file_of(" {}")), "does not start with '{'"));
  EXPECT_TRUE(has(error_for(file_of("")), "does not start with '{'"));
}

TEST(SafetensorsValidation, RepeatedTensorName) {
  const std::string header = R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                             R"("t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})";
  EXPECT_TRUE(has(error_for(file_of(header, "ab")), "header names 't' twice"));
}

TEST(SafetensorsValidation, PathologicalNesting) {
  const std::string deep = R"({"t":)" + std::string(200, '[') + std::string(200, ']') + "}";
  EXPECT_TRUE(has(error_for(file_of(deep)), "nests deeper than"));
}

// Messages quote small values as written and describe the rest: a header value can be 100 MB of nested JSON.
TEST(SafetensorsValidation, MessagesDescribeLargeValuesWithoutDumpingThem) {
  std::string long_shape = "[";
  for (int i = 0; i < 5000; ++i) long_shape += "1.5,";
  long_shape += "1]";
  std::string msg = error_for(file_of(one("F32", long_shape, "[0,4]"), "abcd"));
  EXPECT_TRUE(has(msg, "tensor 't': shape an array of 5001 values is not a list of integers")) << msg;
  const std::string nested = std::string(60, '[') + std::string(60, ']');
  msg = error_for(file_of(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":)" + nested + "}}", "abcd"));
  EXPECT_TRUE(has(msg, "data_offsets an array of 1 value is not a pair")) << msg;
  EXPECT_LT(msg.size(), 200u) << msg;
  msg = error_for(file_of(R"({"__metadata__":{"k":)" + nested + "}}"));
  EXPECT_TRUE(has(msg, "__metadata__ value for 'k' is an array of 1 value, not a string")) << msg;
}

// A header claiming a 10^12-element tensor fails on its offsets before anything is allocated for it.
TEST(SafetensorsValidation, HugeClaimFailsOnOffsets) {
  const std::string msg =
      error_for(file_of(one("F32", "[1000000,1000000]", "[0,4000000000000]"), "abcd"));
  EXPECT_TRUE(has(msg, "end beyond the 4-byte data buffer")) << msg;
}

TEST(SafetensorsValidation, EntryNotAnObject) {
  EXPECT_TRUE(has(error_for(file_of(R"({"t":[1,2]})")), "tensor 't': header entry is [1,2], not an object"));
}

TEST(SafetensorsValidation, MissingDtype) {
  const std::string msg = error_for(file_of(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", "abcd"));
  EXPECT_TRUE(has(msg, "tensor 't': header entry has no \"dtype\"")) << msg;
}

TEST(SafetensorsValidation, MissingShape) {
  const std::string msg = error_for(file_of(R"({"t":{"dtype":"F32","data_offsets":[0,4]}})", "abcd"));
  EXPECT_TRUE(has(msg, "tensor 't': header entry has no \"shape\"")) << msg;
}

TEST(SafetensorsValidation, MissingDataOffsets) {
  const std::string msg = error_for(file_of(R"({"t":{"dtype":"F32","shape":[1]}})", "abcd"));
  EXPECT_TRUE(has(msg, "tensor 't': header entry has no \"data_offsets\"")) << msg;
}

TEST(SafetensorsValidation, DtypeNotAString) {
  const std::string header = R"({"t":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})";
  EXPECT_TRUE(has(error_for(file_of(header, "abcd")), "tensor 't': dtype 32 is not a string"));
}

TEST(SafetensorsValidation, ShapeWrongType) {
  EXPECT_TRUE(has(error_for(file_of(one("F32", "\"4\"", "[0,4]"), "abcd")), "shape \"4\" is not a list of integers"));
  EXPECT_TRUE(has(error_for(file_of(one("F32", "[4.0]", "[0,16]"), std::string(16, 'x'))),
                  "shape [4.0] is not a list of integers"));
  EXPECT_TRUE(has(error_for(file_of(one("F32", "[[1]]", "[0,4]"), "abcd")), "is not a list of integers"));
  EXPECT_TRUE(has(error_for(file_of(one("F32", "[true]", "[0,4]"), "abcd")), "is not a list of integers"));
}

TEST(SafetensorsValidation, DataOffsetsWrongType) {
  for (const char* bad : {"[0]", "[0,4,8]", "\"0,4\"", "[0,4.5]", "[-4,4]", "[0,1e30]", "{\"begin\":0}"}) {
    const std::string msg = error_for(file_of(one("F32", "[1]", bad), "abcd"));
    EXPECT_TRUE(has(msg, "tensor 't': data_offsets ")) << msg;
    EXPECT_TRUE(has(msg, "is not a pair of non-negative integers")) << msg;
  }
}

TEST(SafetensorsValidation, UnknownDtype) {
  EXPECT_TRUE(has(error_for(file_of(one("float32", "[1]", "[0,4]"), "abcd")), "tensor 't': unknown dtype \"float32\""));
  EXPECT_TRUE(has(error_for(file_of(one("f32", "[1]", "[0,4]"), "abcd")), "unknown dtype \"f32\""));
}

TEST(SafetensorsValidation, NegativeShape) {
  const std::string msg = error_for(file_of(one("F32", "[2,-1]", "[0,0]")));
  EXPECT_TRUE(has(msg, "tensor 't': shape [2,-1] has a negative extent")) << msg;
}

TEST(SafetensorsValidation, ShapeOverflow) {
  // 2^32 * 2^32 elements overflow 64 bits; 2^62 F32 elements overflow the byte count.
  EXPECT_TRUE(has(error_for(file_of(one("F32", "[4294967296,4294967296]", "[0,4]"), "abcd")), "overflows"));
  EXPECT_TRUE(has(error_for(file_of(one("F32", "[4611686018427387904]", "[0,4]"), "abcd")), "overflows"));
  EXPECT_TRUE(has(error_for(file_of(one("U8", "[9223372036854775808]", "[0,1]"), "a")), "too large"));
}

TEST(SafetensorsValidation, SubByteDtypeMustFillWholeBytes) {
  EXPECT_TRUE(has(error_for(file_of(one("F4", "[3]", "[0,2]"), "ab")), "does not fill whole bytes"));
  EXPECT_EQ(SafetensorsFile::from_bytes(file_of(one("F4", "[4]", "[0,2]"), "ab"), kName).at("t").numel(), 4);
}

TEST(SafetensorsValidation, BeginAfterEnd) {
  const std::string msg = error_for(file_of(one("F32", "[1]", "[8,4]"), std::string(8, 'x')));
  EXPECT_TRUE(has(msg, "tensor 't': data_offsets [8, 4] begin after they end")) << msg;
}

TEST(SafetensorsValidation, EndBeyondTheBuffer) {
  const std::string msg = error_for(file_of(one("F32", "[2]", "[0,8]"), "abcd"));
  EXPECT_TRUE(has(msg, "tensor 't': data_offsets [0, 8] end beyond the 4-byte data buffer")) << msg;
  EXPECT_TRUE(has(error_for(file_of(one("U8", "[0]", "[18446744073709551615,18446744073709551615]"))),
                  "end beyond the 0-byte data buffer"));
}

TEST(SafetensorsValidation, ByteRangeDoesNotMatchShapeAndDtype) {
  const std::string msg = error_for(file_of(one("F32", "[2,2]", "[0,12]"), std::string(12, 'x')));
  EXPECT_TRUE(has(msg, "tensor 't': data_offsets [0, 12] span 12 bytes, but F32 shape [2,2] needs 16")) << msg;
  EXPECT_TRUE(has(error_for(file_of(one("F16", "[3]", "[0,3]"), "abc")), "needs 6"));
}

TEST(SafetensorsValidation, OverlappingTensors) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  const std::string msg = error_for(file_of(header, std::string(12, 'x')));
  EXPECT_TRUE(has(msg, "tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a' (data_offsets [0, 8])")) << msg;
  // Two tensors on the very same bytes overlap too.
  const std::string same = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})";
  EXPECT_TRUE(has(error_for(file_of(same, "abcd")), "overlaps"));
}

TEST(SafetensorsValidation, HoleBetweenTensors) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  const std::string msg = error_for(file_of(header, std::string(12, 'x')));
  EXPECT_TRUE(has(msg, "bytes 4..8 of the data buffer belong to no tensor (a hole before tensor 'b')")) << msg;
  EXPECT_TRUE(has(error_for(file_of(one("U8", "[1]", "[1,2]"), "ab")), "bytes 0..1"));
}

TEST(SafetensorsValidation, UnusedBytesAtTheEnd) {
  const std::string msg = error_for(file_of(one("F32", "[1]", "[0,4]"), "abcdef"));
  EXPECT_TRUE(has(msg, "bytes 4..6 of the data buffer belong to no tensor")) << msg;
  EXPECT_TRUE(has(error_for(file_of("{}", "x")), "bytes 0..1"));
}

TEST(SafetensorsValidation, MetadataValueNotAString) {
  const std::string msg = error_for(file_of(R"({"__metadata__":{"ok":"yes","epoch":3}})"));
  EXPECT_TRUE(has(msg, "__metadata__ value for 'epoch' is 3, not a string")) << msg;
  EXPECT_TRUE(has(error_for(file_of(R"({"__metadata__":["a"]})")), "__metadata__ is [\"a\"], not an object"));
}

// ---- bytes from Python, not from our writer ----

TEST_F(SafetensorsFileTest, ReadsAFileBuiltByPythonWithNumpy) {
  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 with numpy is not available";
  // Builds the file as the format describes it, with Python's own json (", " and ": " separators, metadata last,
  // tensors ordered like the reference writer: widest dtype first, then name). The expected values come from
  // numpy's conversions, written as raw float32/int64 bits.
  const std::string script = R"PY(
import json, struct, sys
import numpy as np
out = sys.argv[1]
bits = np.arange(65536, dtype=np.uint16)
f32 = np.array([[1.5, -2.25, 3e-39], [np.pi, -0.0, 1e38]], dtype=np.float32)
f64 = np.array([0.1, -1e-300, 12345.678, 1e300, -3.4028235677973366e38], dtype=np.float64)
i64 = np.array([[0, 1, -1, 2**62, -2**63]], dtype=np.int64)
i32 = np.array([-7, 2**31 - 1], dtype=np.int32)
tensors = [
    ("f16.all", "F16", [256, 256], bits.view(np.float16).tobytes()),
    ("bf16.all", "BF16", [65536], bits.tobytes()),
    ("f32", "F32", list(f32.shape), f32.tobytes()),
    ("f64", "F64", list(f64.shape), f64.tobytes()),
    ("i64", "I64", list(i64.shape), i64.tobytes()),
    ("i32", "I32", list(i32.shape), i32.tobytes()),
    ("empty", "F32", [0, 4], b""),
]
width = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2}
tensors.sort(key=lambda t: (-width[t[1]], t[0]))
header, offset, buf = {}, 0, b""
for name, dtype, shape, data in tensors:
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
    offset += len(data)
    buf += data
header["__metadata__"] = {"format": "np", "source": "test"}
text = json.dumps(header).encode("utf-8")
text += b" " * ((8 - len(text) % 8) % 8)
with open(out + "/ref.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + buf)
with np.errstate(over="ignore"):
    bits.view(np.float16).astype(np.float32).tofile(out + "/f16.bin")
    (bits.astype(np.uint32) << 16).view(np.float32).tofile(out + "/bf16.bin")
    f32.tofile(out + "/f32.bin")
    f64.astype(np.float32).tofile(out + "/f64.bin")
np.concatenate([i64.ravel(), i32.astype(np.int64)]).tofile(out + "/ints.bin")
)PY";
  ASSERT_TRUE(run_python(script));

  const SafetensorsFile f = SafetensorsFile::open(path("ref.safetensors"));
  ASSERT_EQ(f.tensors().size(), 7u);
  EXPECT_EQ(f.tensors()[0].name, "f64");  // byte-buffer order: F64/I64 first, by name
  EXPECT_EQ(f.tensors()[1].name, "i64");
  EXPECT_EQ(f.metadata().at("format"), "np");
  EXPECT_EQ(f.metadata().at("source"), "test");
  EXPECT_EQ(f.at("f16.all").shape, dims({256, 256}));
  EXPECT_EQ(f.at("empty").shape, dims({0, 4}));
  EXPECT_TRUE(f.to_float("empty").empty());

  const auto expect_same_floats = [&](const std::string& tensor, const std::string& expected_file) {
    const std::vector<float> got = f.to_float(tensor);
    const std::string want = slurp(expected_file);
    ASSERT_EQ(want.size(), got.size() * 4) << tensor;
    int mismatches = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      float w;
      std::memcpy(&w, want.data() + 4 * i, 4);
      // NaN against NaN by class (numpy may quiet signalling NaNs); everything else bit for bit, so -0 counts.
      const bool same = std::isnan(w) ? std::isnan(got[i]) : bits_of(w) == bits_of(got[i]);
      if (!same && ++mismatches <= 5)
        ADD_FAILURE() << tensor << "[" << i << "]: got " << got[i] << ", numpy says " << w;
    }
    EXPECT_EQ(mismatches, 0) << tensor;
  };
  expect_same_floats("f16.all", "f16.bin");
  expect_same_floats("bf16.all", "bf16.bin");
  expect_same_floats("f32", "f32.bin");
  expect_same_floats("f64", "f64.bin");

  std::vector<std::int64_t> ints = f.to_int64("i64");
  const std::vector<std::int64_t> i32 = f.to_int64("i32");
  ints.insert(ints.end(), i32.begin(), i32.end());
  const std::string want = slurp("ints.bin");
  ASSERT_EQ(want.size(), ints.size() * 8);
  std::vector<std::int64_t> expected(ints.size());
  std::memcpy(expected.data(), want.data(), want.size());
  EXPECT_EQ(ints, expected);
  EXPECT_EQ(ints[4], std::numeric_limits<std::int64_t>::min());
}

TEST_F(SafetensorsFileTest, PythonReadsOurWriterOutput) {
  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 with numpy is not available";
  write_file_atomic(path("ours.safetensors"),
                    encode_safetensors({{"w", array_of({2, 2}, {1.0, -0.5, 0.25, 3.0})}, {"b", array_of({1}, {7.0})}},
                                       {{"epoch", "2"}}));
  const std::string script = R"PY(
import json, struct, sys
import numpy as np
raw = open(sys.argv[1] + "/ours.safetensors", "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
assert n % 8 == 0, n
header = json.loads(raw[8:8 + n].decode("utf-8"))
assert header["__metadata__"] == {"epoch": "2"}, header
buf = raw[8 + n:]
w, b = header["w"], header["b"]
assert w["dtype"] == "F32" and w["shape"] == [2, 2] and w["data_offsets"] == [0, 16], w
assert b["dtype"] == "F32" and b["shape"] == [1] and b["data_offsets"] == [16, 20], b
assert len(buf) == 20
v = np.frombuffer(buf[0:16], dtype="<f4").reshape(2, 2)
assert (v == np.array([[1.0, -0.5], [0.25, 3.0]], dtype=np.float32)).all(), v
assert np.frombuffer(buf[16:20], dtype="<f4")[0] == 7.0
)PY";
  EXPECT_TRUE(run_python(script));
}

}  // namespace
}  // namespace attnlens
