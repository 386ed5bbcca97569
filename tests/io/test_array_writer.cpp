#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "io/array_writer.hpp"
#include "io/atomic_file.hpp"
#include "io/npy.hpp"

namespace attnlens {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Unique empty folder per test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("attnlens_io_" + std::to_string(::getpid()) + "_" +
                                        info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Every entry in `dir`, so tests can assert that no temporary file was left behind.
  static std::vector<std::string> listing(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

using AtomicFile = TempDirTest;
using ArrayWriterFiles = TempDirTest;

TEST(ArrayWriterCsv, Rank2) {
  Array a({2, 3});
  a.data = {0.1, 1.0, -2.5, 1e-20, 3.0, 1.0 / 3.0};
  EXPECT_EQ(encode_array(a, {"query", "key"}, ".csv"),
            "query,key_0,key_1,key_2\n"
            "0,0.10000000000000001,1,-2.5\n"
            "1,9.9999999999999995e-21,3,0.33333333333333331\n");
}

TEST(ArrayWriterCsv, Rank3IndexesLeadingDimensionsInCOrder) {
  Array a({2, 2, 2});
  for (std::size_t i = 0; i < 8; ++i) a.data[i] = static_cast<double>(i);
  EXPECT_EQ(encode_array(a, {"layer", "query", "key"}, "csv"),
            "layer,query,key_0,key_1\n"
            "0,0,0,1\n"
            "0,1,2,3\n"
            "1,0,4,5\n"
            "1,1,6,7\n");
}

TEST(ArrayWriterCsv, Rank1AndRank0) {
  Array v({3});
  v.data = {0.5, 0.25, 0.125};
  EXPECT_EQ(encode_array(v, {"token"}, ".CSV"), "token_0,token_1,token_2\n0.5,0.25,0.125\n");
  Array s(std::vector<std::int64_t>{}, 0.75);
  EXPECT_EQ(encode_array(s, {}, ".csv"), "value\n0.75\n");
}

TEST(ArrayWriterCsv, QuotesOddDimensionNames) {
  Array a({1, 1}, 2.0);
  EXPECT_EQ(encode_array(a, {"a,b", "k"}, ".csv"), "\"a,b\",k_0\n0,2\n");
}

TEST(ArrayWriterJson, NestedListsWithShapeAndDims) {
  Array a({2, 3});
  a.data = {0.1, 1, 2, 3, 4, 1.0 / 3.0};
  const std::string text = encode_array(a, {"query", "key"}, ".json");
  EXPECT_EQ(text.rfind("{\"shape\":[2,3],\"dims\":[\"query\",\"key\"],\"data\":[[", 0), 0u) << text;
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["shape"], nlohmann::json::array({2, 3}));
  EXPECT_EQ(j["dims"], nlohmann::json::array({"query", "key"}));
  ASSERT_EQ(j["data"].size(), 2u);
  ASSERT_EQ(j["data"][1].size(), 3u);
  EXPECT_EQ(j["data"][0][0].get<double>(), 0.1);
  EXPECT_EQ(j["data"][1][0].get<double>(), 3.0);
  EXPECT_EQ(j["data"][1][2].get<double>(), 1.0 / 3.0);  // full precision survives
}

TEST(ArrayWriterJson, ScalarAndRank3) {
  const auto s = nlohmann::json::parse(encode_array(Array(std::vector<std::int64_t>{}, 2.5), {}, ".Json"));
  EXPECT_EQ(s["shape"], nlohmann::json::array());
  EXPECT_EQ(s["data"].get<double>(), 2.5);

  Array a({2, 1, 2});
  a.data = {1, 2, 3, 4};
  const auto j = nlohmann::json::parse(encode_array(a, {"l", "q", "k"}, ".json"));
  EXPECT_EQ(j["data"], nlohmann::json::parse("[[[1.0,2.0]],[[3.0,4.0]]]"));
}

TEST(ArrayWriterNpy, SameBytesAsEncodeNpy) {
  Array a({2, 2});
  a.data = {1, 2, 3, 4};
  EXPECT_EQ(encode_array(a, {"q", "k"}, ".NPY"), encode_npy(a));
}

TEST(ArrayWriterErrors, UnknownExtensionAndDimsMismatch) {
  Array a({2, 2}, 1.0);
  EXPECT_THROW(encode_array(a, {"q", "k"}, ".txt"), InputError);
  EXPECT_THROW(encode_array(a, {"q", "k"}, ""), InputError);
  EXPECT_THROW(encode_array(a, {"q"}, ".csv"), InputError);
  EXPECT_THROW(encode_array(a, {"l", "q", "k"}, ".json"), InputError);
  EXPECT_THROW(encode_array(Array(std::vector<std::int64_t>{}), {"x"}, ".csv"), InputError);
}

TEST_F(ArrayWriterFiles, WritesEachFormatAndCreatesFolders) {
  Array a({2, 3});
  a.data = {0.5, 0.25, 0.125, 1, 2, 3};
  const fs::path sub = dir_ / "deep" / "er";
  write_array((sub / "a.npy").string(), a, {"query", "key"});
  write_array((sub / "a.CSV").string(), a, {"query", "key"});
  write_array((sub / "a.json").string(), a, {"query", "key"});

  const Array back = read_npy((sub / "a.npy").string());
  EXPECT_EQ(back.shape, a.shape);
  EXPECT_EQ(back.data, a.data);
  EXPECT_EQ(slurp(sub / "a.CSV"), "query,key_0,key_1,key_2\n0,0.5,0.25,0.125\n1,1,2,3\n");
  EXPECT_EQ(nlohmann::json::parse(slurp(sub / "a.json"))["data"][1][2].get<double>(), 3.0);
  EXPECT_EQ(listing(sub), (std::vector<std::string>{"a.CSV", "a.json", "a.npy"}));
}

TEST_F(ArrayWriterFiles, ErrorsNameThePathAndWriteNothing) {
  Array a({2}, 1.0);
  const std::string txt = (dir_ / "out.txt").string();
  try {
    write_array(txt, a, {"token"});
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(txt, 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find(".txt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(write_array((dir_ / "out.csv").string(), a, {"a", "b"}), InputError);
  EXPECT_TRUE(listing(dir_).empty());
}

TEST_F(AtomicFile, WritesAndReplaces) {
  const fs::path p = dir_ / "f.txt";
  write_file_atomic(p.string(), "first");
  EXPECT_EQ(slurp(p), "first");
  write_file_atomic(p.string(), std::string("se\0cond", 7));
  EXPECT_EQ(slurp(p), std::string("se\0cond", 7));
  write_file_atomic(p.string(), "");
  EXPECT_EQ(slurp(p), "");
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"f.txt"}));
}

TEST_F(AtomicFile, CreatesMissingParents) {
  const fs::path p = dir_ / "a" / "b" / "c.bin";
  write_file_atomic(p.string(), "xyz");
  EXPECT_EQ(slurp(p), "xyz");
  EXPECT_EQ(listing(dir_ / "a" / "b"), (std::vector<std::string>{"c.bin"}));
}

TEST_F(AtomicFile, ParentIsAFile) {
  std::ofstream(dir_ / "plain") << "i am a file";
  const std::string target = (dir_ / "plain" / "out.npy").string();
  try {
    write_file_atomic(target, "data");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot write " + target + ": ", 0), 0u) << e.what();
  }
  EXPECT_FALSE(fs::exists(target));
  EXPECT_EQ(slurp(dir_ / "plain"), "i am a file");
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"plain"}));
}

TEST_F(AtomicFile, TargetIsADirectoryLeavesNoTempFile) {
  fs::create_directories(dir_ / "taken");
  const std::string target = (dir_ / "taken").string();
  try {
    write_file_atomic(target, "data");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot write " + target + ": Is a directory");
  }
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"taken"}));
}

TEST_F(AtomicFile, ReadOnlyFolderKeepsOldContent) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores folder permissions";
  const fs::path sub = dir_ / "ro";
  fs::create_directories(sub);
  write_file_atomic((sub / "f").string(), "old");
  fs::permissions(sub, fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_THROW(write_file_atomic((sub / "f").string(), "new"), InputError);
  fs::permissions(sub, fs::perms::owner_all);
  EXPECT_EQ(slurp(sub / "f"), "old");
  EXPECT_EQ(listing(sub), (std::vector<std::string>{"f"}));
}

// A write that fails after the temporary file exists (here: file size limit, EFBIG) must remove it.
TEST_F(AtomicFile, FailedWriteRemovesTempAndKeepsOldContent) {
  const fs::path p = dir_ / "f.bin";
  write_file_atomic(p.string(), "old");
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = 16;
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    write_file_atomic(p.string(), std::string(1000, 'x'));
  } catch (const InputError& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(message, "cannot write " + p.string() + ": File too large");
  EXPECT_EQ(slurp(p), "old");
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"f.bin"}));
}

TEST_F(AtomicFile, RelativePathInCurrentFolder) {
  const fs::path old = fs::current_path();
  fs::current_path(dir_);
  write_file_atomic("rel.txt", "r");
  fs::current_path(old);
  EXPECT_EQ(slurp(dir_ / "rel.txt"), "r");
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"rel.txt"}));
}

}  // namespace
}  // namespace attnlens

namespace attnlens {
namespace {

TEST(CsvField, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(csv_field("rollout"), "rollout");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  std::string non_const = "x,y";  // a non-const string once picked std::quoted through argument-dependent lookup
  EXPECT_EQ(csv_field(non_const), "\"x,y\"");
}

}  // namespace
}  // namespace attnlens
