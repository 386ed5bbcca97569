// config.json beside a model's weights, read without LibTorch: typed keys with strict checks (integers are integers
// in range, never a truncated float), class names, and the keys each model family (ViT/DeiT/DINO, BERT, RoBERTa,
// DistilBERT) takes.
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

/// A key that restates what the weights already say (a width, a depth, a count of registers): InputError "<where>:
/// <key> is <declared> but the weights have <actual>" when j[key] is present and differs (or is not an integer).
void check_config_matches(const nlohmann::json& j, const char* key, int actual, const std::string& where);

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
/// RoBERTa's config.json has the same keys. The tokenizer's do_lower_case is read with the tokenizer
/// (io/text_tokenizer.hpp).
struct BertConfigKeys {
  int num_heads = 0;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";
  double mask_value = -10000.0;
  std::vector<std::string> labels;
  int vocab_size = 0, hidden_size = 0, num_layers = 0;  ///< from the weights, checked against the config
  int pad_token_id = 0;                                 ///< RoBERTa's position offset (its padding_idx)
};
/// Reads num_attention_heads (>= 1), layer_norm_eps (> 0), hidden_act, attention_mask_value, labels / id2label,
/// pad_token_id (>= 0), and checks vocab_size, hidden_size and num_hidden_layers against the weights.
void read_bert_config_keys(const nlohmann::json& j, BertConfigKeys& keys, const std::string& where);

/// What a DistilBERT config.json may set (Hugging Face DistilBertConfig's own key names, and the BERT names its
/// attribute_map gives them). dim, n_layers, hidden_dim and vocab_size hold the values the weights have; a config
/// that declares other values is an error. There is no eps key: DistilBERT hard-codes 1e-12.
struct DistilBertConfigKeys {
  int num_heads = 0;
  std::string activation = "gelu";
  std::vector<std::string> labels;
  int vocab_size = 0, dim = 0, num_layers = 0, hidden_dim = 0;  ///< from the weights, checked against the config
};
/// Reads n_heads / num_attention_heads (>= 1), activation, labels / id2label, and checks vocab_size, dim
/// (hidden_size), n_layers (num_hidden_layers) and hidden_dim against the weights.
void read_distilbert_config_keys(const nlohmann::json& j, DistilBertConfigKeys& keys, const std::string& where);

}  // namespace attnlens
ATTNLENS_API_END
