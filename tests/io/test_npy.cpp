#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include <sys/stat.h>

#include "io/npy.hpp"

namespace attnlens {
namespace {

namespace fs = std::filesystem;

std::string le_f32(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  std::string s;
  for (int i = 0; i < 4; ++i) s += static_cast<char>((u >> (8 * i)) & 0xff);
  return s;
}

std::string be_f64(double v) {
  std::uint64_t u;
  std::memcpy(&u, &v, 8);
  std::string s;
  for (int i = 7; i >= 0; --i) s += static_cast<char>((u >> (8 * i)) & 0xff);
  return s;
}

// A .npy preamble around `dict` with the header length field in the width `major` uses; no padding.
std::string preamble(const std::string& dict, int major = 1) {
  std::string s = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  const std::uint32_t n = static_cast<std::uint32_t>(dict.size());
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) s += static_cast<char>((n >> (8 * i)) & 0xff);
  return s + dict;
}

bool have_numpy() { return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("attnlens_npy_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string put(const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  // Reads `bytes` as a file and returns the InputError message; fails the test if it reads fine.
  std::string error_for(const std::string& bytes) {
    const std::string p = put("bad.npy", bytes);
    try {
      read_npy(p);
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(p + ": ", 0), 0u) << "message does not start with the path: " << msg;
      return msg;
    }
    ADD_FAILURE() << "read_npy accepted a bad file";
    return "";
  }

  fs::path dir_;
};

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_F(NpyTest, RoundTripKeepsShapeAndExactValues) {
  Array a({2, 3, 4});
  for (std::size_t i = 0; i < a.data.size(); ++i) a.data[i] = std::sqrt(static_cast<double>(i)) / 3.0 - 0.7;
  a.data[5] = -0.0;
  a.data[6] = 1e-300;
  a.data[7] = std::nextafter(1.0, 2.0);
  const Array b = read_npy(put("a.npy", encode_npy(a)));
  EXPECT_EQ(b.shape, a.shape);
  ASSERT_EQ(b.data.size(), a.data.size());
  for (std::size_t i = 0; i < a.data.size(); ++i) EXPECT_EQ(b.data[i], a.data[i]) << i;
  EXPECT_TRUE(std::signbit(b.data[5]));
}

TEST_F(NpyTest, EncodeHeaderFollowsNumpyLayout) {
  Array a({5}, 2.5);
  const std::string bytes = encode_npy(a);
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t hlen = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  const std::size_t preamble_len = 10 + hlen;
  EXPECT_EQ(preamble_len % 64, 0u);
  EXPECT_EQ(bytes[preamble_len - 1], '\n');
  EXPECT_EQ(bytes.size(), preamble_len + 5 * 8);
  const std::string header = bytes.substr(10, hlen);
  EXPECT_EQ(header.rfind("{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", 0), 0u) << header;

  const std::string scalar = encode_npy(Array(std::vector<std::int64_t>{}, 4.0));
  EXPECT_TRUE(has(scalar, "'shape': (), }"));
  EXPECT_TRUE(has(encode_npy(Array({2, 3})), "'shape': (2, 3), }"));

  // numpy's quirks: spare space after the header so the first axis can grow in place, and a full 64 bytes of
  // padding (not 0) when the header happens to end on a boundary. Both change the preamble length here.
  const auto preamble_of = [](const std::string& b) {
    return 10 + (static_cast<unsigned char>(b[8]) | (static_cast<unsigned char>(b[9]) << 8));
  };
  std::vector<std::int64_t> aligned(13, 1);
  aligned.push_back(100);
  EXPECT_EQ(preamble_of(encode_npy(Array(aligned))), 192);
  EXPECT_EQ(preamble_of(encode_npy(Array(std::vector<std::int64_t>(15, 1)))), 192);

  const Array back = read_npy(put("s.npy", scalar));
  EXPECT_TRUE(back.shape.empty());
  ASSERT_EQ(back.data.size(), 1u);
  EXPECT_EQ(back.data[0], 4.0);
  const Array empty = read_npy(put("e.npy", encode_npy(Array({2, 0}))));
  EXPECT_EQ(empty.shape, (std::vector<std::int64_t>{2, 0}));
  EXPECT_TRUE(empty.data.empty());
}

TEST_F(NpyTest, ReadsLittleEndianFloat32) {
  const std::string data = le_f32(1.5f) + le_f32(-2.25f) + le_f32(0.1f) + le_f32(3e-5f) + le_f32(7.f) + le_f32(8.f);
  const Array a = read_npy(put("f4.npy", preamble("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n") + data));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3}));
  ASSERT_EQ(a.data.size(), 6u);
  EXPECT_EQ(a.data[0], 1.5);
  EXPECT_EQ(a.data[1], -2.25);
  EXPECT_EQ(a.data[2], static_cast<double>(0.1f));  // widened, not re-rounded
  EXPECT_EQ(a.data[3], static_cast<double>(3e-5f));
  EXPECT_EQ(a.data[5], 8.0);
}

TEST_F(NpyTest, ReadsBigEndianFloat64InAnyKeyOrder) {
  const std::string dict = "{\"shape\": (3,), 'fortran_order': False, 'descr': '>f8'}";
  const Array a = read_npy(put("be.npy", preamble(dict) + be_f64(0.1) + be_f64(-1e300) + be_f64(42.0)));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{3}));
  ASSERT_EQ(a.data.size(), 3u);
  EXPECT_EQ(a.data[0], 0.1);
  EXPECT_EQ(a.data[1], -1e300);
  EXPECT_EQ(a.data[2], 42.0);
}

TEST_F(NpyTest, ReadsVersion2And3Headers) {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }   \n";
  for (int major : {2, 3}) {
    const Array a = read_npy(put("v.npy", preamble(dict, major) + le_f32(0.5f) + le_f32(0.25f)));
    EXPECT_EQ(a.shape, (std::vector<std::int64_t>{1, 2})) << major;
    ASSERT_EQ(a.data.size(), 2u);
    EXPECT_EQ(a.data[0], 0.5);
    EXPECT_EQ(a.data[1], 0.25);
  }
}

// numpy's np.load refuses headers over 10000 bytes (max_header_size) unless told otherwise; so does attnlens, for
// version 2 headers (whose length field could say 4 GB) too.
TEST_F(NpyTest, RefusesVersion2HeaderLongerThanNumpysLimit) {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }" + std::string(70000, ' ') + "\n";
  EXPECT_TRUE(
      has(error_for(preamble(dict, 2) + le_f32(-3.5f)), "header length 70058 exceeds the limit of 10000 bytes"));
  const std::string fits = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }" + std::string(9000, ' ') + "\n";
  const Array a = read_npy(put("big.npy", preamble(fits, 2) + le_f32(-3.5f)));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(a.data.at(0), -3.5);
}

TEST_F(NpyTest, ReadsPython2LongShapes) {
  const Array a = read_npy(put("l.npy", preamble("{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 1L), }\n") +
                                         le_f32(9.f)));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{1, 1}));
  EXPECT_EQ(a.data.at(0), 9.0);
}

TEST_F(NpyTest, MissingFile) {
  const std::string p = (dir_ / "nope.npy").string();
  try {
    read_npy(p);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot open " + p + ": No such file or directory");
  }
}

TEST_F(NpyTest, DirectoryIsAnError) {
  try {
    read_npy(dir_.string());
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), dir_.string())) << e.what();
  }
}

TEST_F(NpyTest, BadMagic) {
  EXPECT_TRUE(has(error_for("PK\x03\x04 this is a zip"), "not a .npy file"));
  EXPECT_TRUE(has(error_for(""), "not a .npy file"));
}

TEST_F(NpyTest, TruncatedHeader) {
  const std::string full = preamble("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n");
  EXPECT_TRUE(has(error_for(full.substr(0, 8)), "truncated .npy header"));
  const std::string msg = error_for(full.substr(0, 30));
  EXPECT_TRUE(has(msg, "truncated .npy header")) << msg;
  EXPECT_TRUE(has(msg, std::to_string(full.size()))) << msg;
  EXPECT_TRUE(has(msg, "30")) << msg;
}

TEST_F(NpyTest, TruncatedData) {
  const std::string msg =
      error_for(preamble("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n") + std::string(10, '\0'));
  EXPECT_TRUE(has(msg, "truncated data")) << msg;
  EXPECT_TRUE(has(msg, "needs 24 bytes, file has 10")) << msg;
}

TEST_F(NpyTest, TrailingBytes) {
  const std::string msg = error_for(preamble("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n") +
                                    le_f32(1.f) + le_f32(2.f) + "abc");
  EXPECT_TRUE(has(msg, "3 unexpected trailing bytes")) << msg;
}

TEST_F(NpyTest, UnsupportedDtype) {
  const std::string p = put("x.npy", preamble("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }\n") +
                                         std::string(8, '\0'));
  try {
    read_npy(p);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), p + ": unsupported dtype '<i8'; attnlens reads float32 or float64");
  }
  EXPECT_TRUE(has(error_for(preamble("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }\n") + "\0\0"),
                  "unsupported dtype '<f2'"));
  EXPECT_TRUE(has(error_for(preamble("{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }\n") + "\0"),
                  "unsupported dtype"));
  EXPECT_TRUE(has(error_for(preamble("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n") +
                            "\0\0\0\0"),
                  "unsupported dtype [('a', '<f4')]"));
}

TEST_F(NpyTest, FortranOrderIsRejectedWithAdvice) {
  const std::string msg = error_for(preamble("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }\n") +
                                    std::string(32, '\0'));
  EXPECT_TRUE(has(msg, "Fortran")) << msg;
  EXPECT_TRUE(has(msg, "np.ascontiguousarray")) << msg;
}

TEST_F(NpyTest, BadShapeText) {
  for (const char* shape : {"(2, x)", "(3)", "(2,,3)", "(-1, 2)", "[2, 3]", "3", "(2.5,)", "(2, 3", "None"}) {
    const std::string msg =
        error_for(preamble(std::string("{'descr': '<f4', 'fortran_order': False, 'shape': ") + shape + ", }\n"));
    EXPECT_TRUE(has(msg, "bad .npy header")) << shape << ": " << msg;
  }
}

TEST_F(NpyTest, HeaderKeysMustBeExactlyTheThree) {
  EXPECT_TRUE(has(error_for(preamble("{'descr': '<f4', 'shape': (1,), }\n") + le_f32(1.f)),
                  "no 'fortran_order' key"));
  EXPECT_TRUE(has(error_for(preamble("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n") +
                            le_f32(1.f)),
                  "unexpected key 'x'"));
  EXPECT_TRUE(has(error_for(preamble("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}") +
                            le_f32(1.f)),
                  "repeats key 'descr'"));
  EXPECT_TRUE(has(error_for(preamble("not a dict at all\n")), "bad .npy header"));
  EXPECT_TRUE(has(error_for(preamble("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}") + le_f32(1.f)),
                  "fortran_order"));
}

TEST_F(NpyTest, UnsupportedVersion) {
  std::string bytes = preamble("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n") + le_f32(1.f);
  bytes[6] = 4;
  EXPECT_TRUE(has(error_for(bytes), "version 4.0"));
}

TEST_F(NpyTest, AbsurdShapes) {
  for (const char* shape : {"(1048576, 1048576, 1048576)", "(99999999999999999999999,)", "(4294967296, 4294967296)",
                            "(17179869185,)"}) {
    const std::string msg =
        error_for(preamble(std::string("{'descr': '<f4', 'fortran_order': False, 'shape': ") + shape + "}\n"));
    EXPECT_TRUE(has(msg, "absurdly large")) << shape << ": " << msg;
  }
  // A plausible element count that the file does not hold is reported as truncation, without allocating it.
  const std::string msg =
      error_for(preamble("{'descr': '<f8', 'fortran_order': False, 'shape': (1073741824, 16)}\n"));
  EXPECT_TRUE(has(msg, "needs 137438953472 bytes, file has 0")) << msg;
}

// Fuzzing finding: 65,000 nested parentheses in the shape overflowed the stack (segfault). numpy's own bound on the
// header length refuses that file, and a nesting bound refuses deep headers within the length.
TEST_F(NpyTest, NestedHeaderIsRefusedNotRecursedInto) {
  const auto nested = [](int depth) {
    return "{'descr': '<f8', 'fortran_order': False, 'shape': " + std::string(depth, '(') + "3," +
           std::string(depth, ')') + "}\n";
  };
  EXPECT_TRUE(has(error_for(preamble(nested(65000), 2)), "header length 130054 exceeds the limit of 10000 bytes"));
  EXPECT_TRUE(has(error_for(preamble(nested(4900))), "nests deeper than 32 brackets"));
  // Redundant parentheses a Python literal allows still read, up to the bound.
  const Array a = read_npy(put("ok.npy", preamble("{'descr': '<f8', 'fortran_order': False, 'shape': ((((2,))))}\n") +
                                             std::string(16, '\0')));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2}));
}

TEST_F(NpyTest, HeaderLengthBoundIsNumpys) {
  std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }";
  const std::string at_limit = dict + std::string(10000 - dict.size() - 1, ' ') + "\n";
  EXPECT_EQ(read_npy(put("limit.npy", preamble(at_limit) + std::string(8, '\0'))).shape,
            (std::vector<std::int64_t>{1}));
  EXPECT_TRUE(has(error_for(preamble(" " + at_limit, 2)), "header length 10001 exceeds the limit of 10000 bytes"));
}

// A pipe has no size to check against: a header claiming 2^34 doubles allocates only what arrives.
TEST_F(NpyTest, PipeWithAbsurdClaimFailsWithoutAllocatingIt) {
  const std::string fifo = (dir_ / "pipe.npy").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string bytes = preamble("{'descr': '<f8', 'fortran_order': False, 'shape': (16777216, 1024)}\n") +
                            std::string(64, '\0');
  std::thread writer([&] { std::ofstream(fifo, std::ios::binary) << bytes; });
  std::string msg;
  try {
    read_npy(fifo);
  } catch (const InputError& e) {
    msg = e.what();
  }
  writer.join();
  EXPECT_TRUE(has(msg, "needs 137438953472 bytes, file has 64")) << msg;
}

// ---- cross-checks against the real numpy ----

class NpyNumpy : public NpyTest {
 protected:
  void SetUp() override {
    NpyTest::SetUp();
    if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 with numpy not available";
  }
  int python(const std::string& code) {
    const std::string script = put("script.py", code);
    return std::system(("/usr/bin/python3 " + script + " " + dir_.string()).c_str());
  }
};

TEST_F(NpyNumpy, ReadsWhatNumpyWrites) {
  ASSERT_EQ(python("import sys, numpy as np\n"
                   "d = sys.argv[1]\n"
                   "np.save(d + '/c.npy', np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7)\n"
                   "np.save(d + '/be.npy', np.array([[0.1, 2.0], [3.0, -4.5]], dtype='>f8'))\n"
                   "np.save(d + '/f.npy', np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)))\n"),
            0);
  const Array c = read_npy((dir_ / "c.npy").string());
  EXPECT_EQ(c.shape, (std::vector<std::int64_t>{2, 3, 4}));
  ASSERT_EQ(c.data.size(), 24u);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(c.data[i], static_cast<double>(static_cast<float>(i) / 7.0f)) << i;

  const Array be = read_npy((dir_ / "be.npy").string());
  EXPECT_EQ(be.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(be.data, (std::vector<double>{0.1, 2.0, 3.0, -4.5}));

  const std::string f = (dir_ / "f.npy").string();
  try {
    read_npy(f);
    FAIL() << "fortran-order file accepted";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), "np.ascontiguousarray")) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind(f, 0), 0u);
  }
}

TEST_F(NpyNumpy, NumpyReadsWhatWeWrite) {
  Array a({3, 2, 5});
  for (std::size_t i = 0; i < a.data.size(); ++i) a.data[i] = std::sin(static_cast<double>(i) * 1.3) * 1e3;
  put("ours.npy", encode_npy(a));
  put("scalar.npy", encode_npy(Array(std::vector<std::int64_t>{}, -0.125)));
  put("vec.npy", encode_npy(Array({4}, 0.3)));
  const int rc = python(
      "import sys, math, numpy as np\n"
      "d = sys.argv[1]\n"
      "a = np.load(d + '/ours.npy')\n"
      "want = np.array([math.sin(i * 1.3) * 1e3 for i in range(30)]).reshape(3, 2, 5)\n"
      "ok = a.dtype == np.float64 and a.shape == (3, 2, 5) and a.flags.c_contiguous and np.array_equal(a, want)\n"
      "s = np.load(d + '/scalar.npy')\n"
      "ok = ok and s.shape == () and s[()] == -0.125\n"
      "v = np.load(d + '/vec.npy')\n"
      "ok = ok and v.shape == (4,) and bool((v == 0.3).all())\n"
      "sys.exit(0 if ok else 1)\n");
  EXPECT_EQ(rc, 0);
}

TEST_F(NpyNumpy, EncodeIsByteIdenticalToNumpySave) {
  // Shapes chosen to hit numpy's header quirks: growth space crossing a 64-byte boundary, exact alignment.
  const std::vector<std::vector<std::int64_t>> shapes = {
      {3, 4}, {}, {5}, std::vector<std::int64_t>(15, 1), {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 100}};
  ASSERT_EQ(python("import sys, numpy as np\n"
                   "shapes = [(3, 4), (), (5,), (1,) * 15, (1,) * 13 + (100,)]\n"
                   "for i, s in enumerate(shapes):\n"
                   "    n = int(np.prod(s))\n"
                   "    np.save(sys.argv[1] + '/np%d.npy' % i, (np.arange(n, dtype=np.float64) / 3.0).reshape(s))\n"),
            0);
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    Array a(shapes[i]);
    for (std::size_t k = 0; k < a.data.size(); ++k) a.data[k] = static_cast<double>(k) / 3.0;
    std::ifstream in(dir_ / ("np" + std::to_string(i) + ".npy"), std::ios::binary);
    const std::string theirs((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(encode_npy(a), theirs) << "shape " << a.shape_string();
  }
}

}  // namespace
}  // namespace attnlens
