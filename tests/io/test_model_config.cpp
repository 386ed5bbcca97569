// config.json reading (io/model_config) and the JSON limits every reader of users' JSON shares (io/json_input).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/array.hpp"
#include "io/json_input.hpp"
#include "io/model_config.hpp"

namespace attnlens {
namespace {

using nlohmann::json;

bool has(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

// The InputError message of `body`, or "" (and a test failure) when it does not throw one.
template <typename Body>
std::string error_of(Body&& body) {
  try {
    body();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError";
  return "";
}

std::string vit_error(const std::string& text) {
  return error_of([&] {
    VitConfigKeys k;
    read_vit_config_keys(parse_config_json(text, "config.json"), k, "config.json");
  });
}

// Fuzzing finding: "num_heads": 1e300 was cast from double to int (undefined behaviour), and 4.9 read as 4.
TEST(ModelConfig, IntegersAreIntegersInRange) {
  EXPECT_EQ(vit_error(R"({"num_heads": 1e300})"),
            "config.json: 'num_heads' must be an integer in [1, 2147483647], got 1e+300");
  EXPECT_EQ(vit_error(R"({"num_heads": 4.9})"),
            "config.json: 'num_heads' must be an integer in [1, 2147483647], got 4.9");
  EXPECT_TRUE(has(vit_error(R"({"num_heads": 4.0})"), "got 4.0"));
  EXPECT_TRUE(has(vit_error(R"({"num_attention_heads": 2147483648})"), "got 2147483648"));
  EXPECT_TRUE(has(vit_error(R"({"num_heads": 0})"), "got 0"));
  EXPECT_TRUE(has(vit_error(R"({"num_heads": "4"})"), "got \"4\""));
  VitConfigKeys k;
  read_vit_config_keys(parse_config_json(R"({"num_heads": 2147483647, "layer_norm_eps": 1e-5})", "c"), k, "c");
  EXPECT_EQ(k.num_heads, 2147483647);
  EXPECT_EQ(k.layer_norm_eps, 1e-5);
  // Silence keeps the family's default.
  VitConfigKeys defaults;
  read_vit_config_keys(parse_config_json(R"({"num_heads": null})", "c"), defaults, "c");
  EXPECT_EQ(defaults.num_heads, 0);
}

TEST(ModelConfig, NumbersAreFiniteAndPositiveWhereTheyMustBe) {
  EXPECT_TRUE(has(vit_error(R"({"layer_norm_eps": -1e-6})"), "'layer_norm_eps' must be a positive number"));
  EXPECT_TRUE(has(error_of([] { parse_config_json(R"({"layer_norm_eps": 1e999})", "c"); }), "number overflow"));
  EXPECT_TRUE(has(vit_error(R"({"image_mean": [0.5, 0.5]})"), "'image_mean' must be a list of 3 numbers"));
  EXPECT_TRUE(
      has(vit_error(R"({"preprocess": {"std": [1, "x", 1]}})"), "'std' must be a list of finite numbers, got \"x\""));
  EXPECT_TRUE(has(vit_error(R"({"preprocess": "none"})"), "'preprocess' must be an object"));
}

// Fuzzing finding: id2label keys "0" and "00" both read as id 0 (the later silently won), and "1x" read as 1.
TEST(ModelConfig, Id2labelKeysAreCanonicalIds) {
  EXPECT_EQ(vit_error(R"({"id2label": {"0": "a", "00": "b"}})"),
            "config.json: id2label key \"00\" is not a class id (\"0\", \"1\", ... without signs, leading zeros or "
            "suffixes)");
  EXPECT_TRUE(has(vit_error(R"({"id2label": {"0": "a", "1x": "b"}})"), "id2label key \"1x\" is not a class id"));
  EXPECT_TRUE(has(vit_error(R"({"id2label": {"0": "a", "+1": "b"}})"), "key \"+1\""));
  EXPECT_TRUE(has(vit_error(R"({"id2label": {"0": "a", " 1": "b"}})"), "key \" 1\""));
  EXPECT_TRUE(has(vit_error(R"({"id2label": {"0": "a", "2": "c"}})"), "id2label ids are not 0..C-1 (id 1 is missing)"));
  EXPECT_TRUE(has(vit_error(R"({"id2label": {"0": 5}})"), "id2label[\"0\"] must be a string, got 5"));
  EXPECT_TRUE(has(vit_error(R"({"id2label": ["a"]})"), "'id2label' must be an object"));
  EXPECT_TRUE(has(vit_error(R"({"labels": ["a", 1]})"), "'labels' must be a list of strings, got 1"));
  VitConfigKeys k;
  read_vit_config_keys(parse_config_json(R"({"labels": ["x"], "id2label": {"10": "k", "1": "b", "0": "a",
    "2": "c", "3": "d", "4": "e", "5": "f", "6": "g", "7": "h", "8": "i", "9": "j"}})",
                                         "c"),
                       k, "c");
  EXPECT_EQ(k.labels, (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}));
}

TEST(ModelConfig, BertKeysAndDeclaredSizes) {
  BertConfigKeys k;
  k.vocab_size = 2500;
  k.hidden_size = 64;
  k.num_layers = 4;
  read_bert_config_keys(parse_config_json(R"({"num_attention_heads": 4, "hidden_act": "relu", "pad_token_id": 1,
    "vocab_size": 2500, "attention_mask_value": -3.4028234663852886e38})",
                                          "c"),
                        k, "c");
  EXPECT_EQ(k.num_heads, 4);
  EXPECT_EQ(k.hidden_act, "relu");
  EXPECT_EQ(k.pad_token_id, 1);
  EXPECT_EQ(k.mask_value, -3.4028234663852886e38);
  const auto bert_error = [&](const std::string& text) {
    return error_of([&] { read_bert_config_keys(parse_config_json(text, "c"), k, "c"); });
  };
  EXPECT_EQ(bert_error(R"({"hidden_size": 768})"), "c: hidden_size is 768 but the weights have 64");
  EXPECT_TRUE(has(bert_error(R"({"vocab_size": 2500.0})"), "'vocab_size' must be an integer in [0, 2147483647]"));
  EXPECT_TRUE(has(bert_error(R"({"pad_token_id": -1})"), "'pad_token_id' must be an integer in [0, "));
}

TEST(ModelConfig, DistilBertKeysUnderEitherName) {
  DistilBertConfigKeys k;
  k.vocab_size = 100;
  k.dim = 32;
  k.num_layers = 2;
  k.hidden_dim = 64;
  read_distilbert_config_keys(parse_config_json(R"({"n_heads": 4, "dim": 32, "n_layers": 2, "hidden_dim": 64,
    "activation": "relu", "id2label": {"0": "NEGATIVE", "1": "POSITIVE"}})", "c"), k, "c");
  EXPECT_EQ(k.num_heads, 4);
  EXPECT_EQ(k.activation, "relu");
  EXPECT_EQ(k.labels, (std::vector<std::string>{"NEGATIVE", "POSITIVE"}));
  read_distilbert_config_keys(parse_config_json(R"({"num_attention_heads": 2})", "c"), k, "c");
  EXPECT_EQ(k.num_heads, 2);
  const auto error = [&](const std::string& text) {
    return error_of([&] { read_distilbert_config_keys(parse_config_json(text, "c"), k, "c"); });
  };
  EXPECT_EQ(error(R"({"dim": 768})"), "c: dim is 768 but the weights have 32");
  EXPECT_EQ(error(R"({"hidden_dim": 3072})"), "c: hidden_dim is 3072 but the weights have 64");
  EXPECT_EQ(error(R"({"vocab_size": 30522})"), "c: vocab_size is 30522 but the weights have 100");
  EXPECT_TRUE(has(error(R"({"n_heads": 0})"), "'n_heads' must be an integer in [1, "));
}

TEST(JsonInput, DepthDuplicatesAndShortMessages) {
  // A million nested arrays: refused at the depth bound, iteratively, with a message of one short line.
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  std::string msg = error_of([&] { parse_json_input(deep, "samples.json"); });
  EXPECT_EQ(msg, "samples.json: JSON nests deeper than 64 levels");
  EXPECT_NO_THROW(parse_json_input(std::string(64, '[') + std::string(64, ']'), "x"));
  EXPECT_EQ(error_of([&] { parse_json_input(R"({"a": 1, "b": {"a": 2, "a": 3}})", "x"); }),
            "x: key \"a\" appears twice in one JSON object");
  msg = error_of([&] { parse_json_input("[\"" + std::string(100000, 'x'), "x"); });
  EXPECT_TRUE(has(msg, "x: invalid JSON: [json.exception.parse_error.101]")) << msg;
  EXPECT_LE(msg.size(), std::string("x: invalid JSON: ").size() + 203);
  EXPECT_TRUE(has(error_of([&] { parse_json_input(std::string("{}\0{", 3), "x"); }), "contains a NUL byte"));
  EXPECT_EQ(json_brief(json::parse("[1,2]")), "[1,2]");
  EXPECT_EQ(json_brief(json::parse("[[1]]")), "an array of 1 value");
  EXPECT_EQ(json_brief(json(std::string(100, 'y'))), "\"" + std::string(39, 'y') + "...\"");
  EXPECT_EQ(json_brief(json::parse(R"("é")")), "\"\\u00e9\"");
}

TEST(ModelConfig, ReadsFilesAndReportsAbsence) {
  const auto dir = std::filesystem::temp_directory_path() / ("attnlens_config_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "config.json").string();
  EXPECT_FALSE(read_config_json(path).has_value());
  std::ofstream(path) << R"({"num_heads": 3})";
  EXPECT_EQ(read_config_json(path)->at("num_heads"), 3);
  std::ofstream(path) << R"([1])";
  EXPECT_EQ(error_of([&] { read_config_json(path); }), path + ": not a JSON object (got [1])");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace attnlens
