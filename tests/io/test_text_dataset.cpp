// Labelled text data sets (io/text_dataset): JSON lists and TSV lines follow one rule for labels.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/array.hpp"
#include "io/text_dataset.hpp"

namespace attnlens {
namespace {

class TextDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("attnlens_text_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string put(const std::string& name, const std::string& text) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string error_for(const std::string& name, const std::string& text) {
    const std::string p = put(name, text);
    try {
      load_text_dataset(p);
    } catch (const InputError& e) {
      return e.what();
    }
    ADD_FAILURE() << "accepted " << text;
    return "";
  }

  std::filesystem::path dir_;
};

// Fuzzing finding: JSON labels -5, 4294967297 and 2147483648 loaded as -5, 1 and -2147483648 (nlohmann's get<int>
// narrows), where the TSV reader refused them.
TEST_F(TextDatasetTest, JsonLabelsFollowTheTsvRule) {
  for (const char* label : {"-5", "4294967297", "2147483648", "1.0", "1e300", "\"1\"", "true"}) {
    const std::string msg =
        error_for("t.json", std::string(R"([{"text": "a", "class": 0}, {"text": "b", "class": )") + label + "}]");
    EXPECT_NE(msg.find(": item 1: \"class\" must be a class index (an integer in [0, 2147483647]), got "),
              std::string::npos)
        << label << ": " << msg;
  }
  for (const char* label : {"-5", "4294967297", "2147483648", "+1", " 1", "1x", "1.0"}) {
    const std::string msg = error_for("t.tsv", std::string("0\tfine\n") + label + "\tb\n");
    EXPECT_NE(msg.find(":2: label '" + std::string(label) + "' is not a class index (an integer in [0, 2147483647])"),
              std::string::npos)
        << label << ": " << msg;
  }
  const auto json = load_text_dataset(put("ok.json", R"([{"text": "a", "class": 2147483647}, {"text": "b",
    "label": 0}, {"text": "c", "class": null}])"));
  ASSERT_EQ(json.size(), 3u);
  EXPECT_EQ(json[0].label, 2147483647);
  EXPECT_EQ(json[1].label, 0);
  EXPECT_EQ(json[2].label, -1);
  const auto tsv = load_text_dataset(put("ok.tsv", "2147483647\ta\n007\tb\n\tc\n"));
  ASSERT_EQ(tsv.size(), 3u);
  EXPECT_EQ(tsv[0].label, 2147483647);
  EXPECT_EQ(tsv[1].label, 7);
  EXPECT_EQ(tsv[2].label, -1);
}

TEST_F(TextDatasetTest, DeepJsonIsRefusedWithAShortMessage) {
  const std::string msg = error_for(
      "deep.json", R"([{"text": "a", "class": )" + std::string(100000, '[') + std::string(100000, ']') + "}]");
  EXPECT_NE(msg.find("deep.json: JSON nests deeper than 64 levels"), std::string::npos) << msg.substr(0, 300);
  EXPECT_LT(msg.size(), 300u);
}

}  // namespace
}  // namespace attnlens
