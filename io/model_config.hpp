// config.json beside a model's weights, read without LibTorch: typed keys with strict checks (integers are integers
// in range, never a truncated float), class names, and the keys each model family (ViT/DeiT/DINO, BERT) takes.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// The JSON object in `path`, or nullopt when the file does not exist. InputError for an unreadable file, invalid
/// JSON (parse_json_input's limits) or a value that is not an object.
std::optional<nlohmann::json> read_config_json(const std::string& path);
/// The same for JSON text already in memory (`where` names it in messages).
nlohmann::json parse_config_json(const std::string& text, const std::string& where);

/// Each sets `out` from j[key] when the key is present and not null, and throws InputError "<where>: '<key>' must
/// be ..., got <brief value>" otherwise. int: a JSON integer (no fraction, no exponent) within int's range; double:
/// a finite number; bool, string; lists: arrays of strings / finite numbers.
void read_config_key(const nlohmann::json& j, const char* key, int& out, const std::string& where);
void read_config_key(const nlohmann::json& j, const char* key, double& out, const std::string& where);
void read_config_key(const nlohmann::json& j, const char* key, bool& out, const std::string& where);
void read_config_key(const nlohmann::json& j, const char* key, std::string& out, const std::string& where);
void read_config_key(const nlohmann::json& j, const char* key, std::vector<std::string>& out, const std::string& where);
void read_config_key(const nlohmann::json& j, const char* key, std::vector<double>& out, const std::string& where);

/// Class names from "labels" (a list of strings) or Hugging Face's "id2label" (an object whose keys are the ids
/// 0..C-1 spelled canonically: "0", "1", ..., never "00", "+1" or "1x"); unchanged when neither is present.
void read_config_labels(const nlohmann::json& j, std::vector<std::string>& labels, const std::string& where);

/// What a ViT-family config.json may set (attnlens' own keys or Hugging Face's); fields keep their value when the
/// file is silent.
struct VitConfigKeys {
  int num_heads = 0;
  double layer_norm_eps = 1e-6;
  std::vector<std::string> labels;
  std::string preprocess;
  std::vector<double> mean, std;
};
/// Reads num_heads / num_attention_heads (>= 1), layer_norm_eps (> 0), labels / id2label, and "preprocess":
/// {preset, mean, std} or else Hugging Face's image_mean / image_std (3 values each).
void read_vit_config_keys(const nlohmann::json& j, VitConfigKeys& keys, const std::string& where);

/// What a BERT config.json may set. vocab_size, hidden_size and num_hidden_layers hold the values the weights
/// have; a config that declares other values is an error.
struct BertConfigKeys {
  int num_heads = 0;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";
  bool do_lower_case = true;
  double mask_value = -10000.0;
  std::vector<std::string> labels;
  int vocab_size = 0, hidden_size = 0, num_layers = 0;  ///< from the weights, checked against the config
};
/// Reads num_attention_heads (>= 1), layer_norm_eps (> 0), hidden_act, do_lower_case, attention_mask_value,
/// labels / id2label, and checks vocab_size, hidden_size and num_hidden_layers against the weights.
void read_bert_config_keys(const nlohmann::json& j, BertConfigKeys& keys, const std::string& where);

}  // namespace attnlens
ATTNLENS_API_END
