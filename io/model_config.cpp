#include "io/model_config.hpp"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <utility>

#include "core/array.hpp"
#include "io/json_input.hpp"

namespace attnlens {

using nlohmann::json;

namespace {

bool present(const json& j, const char* key) { return j.contains(key) && !j[key].is_null(); }

[[noreturn]] void wrong(const std::string& where, const char* key, const std::string& expected, const json& got) {
  throw InputError(where + ": '" + key + "' must be " + expected + ", got " + json_brief(got));
}

// A JSON integer within [lo, hi]; floats (4.9, 4.0, 1e300) are not integers, so nothing is ever truncated.
bool integer_in(const json& v, std::int64_t lo, std::int64_t hi, std::int64_t& out) {
  if (v.is_number_unsigned()) {
    const std::uint64_t u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi)) return false;
    out = static_cast<std::int64_t>(u);
    return out >= lo;
  }
  if (!v.is_number_integer()) return false;
  out = v.get<std::int64_t>();
  return out >= lo && out <= hi;
}

void read_int_in(const json& j, const char* key, int& out, const std::string& where, int lo) {
  if (!present(j, key)) return;
  std::int64_t v = 0;
  if (!integer_in(j[key], lo, std::numeric_limits<int>::max(), v))
    wrong(where, key,
          "an integer in [" + std::to_string(lo) + ", " + std::to_string(std::numeric_limits<int>::max()) + "]",
          j[key]);
  out = static_cast<int>(v);
}

void read_positive(const json& j, const char* key, double& out, const std::string& where) {
  double v = out;
  read_config_key(j, key, v, where);
  if (!(v > 0)) wrong(where, key, "a positive number", j[key]);
  out = v;
}

void read_three(const json& j, const char* key, std::vector<double>& out, const std::string& where) {
  if (!present(j, key)) return;
  std::vector<double> v;
  read_config_key(j, key, v, where);
  if (v.size() != 3) wrong(where, key, "a list of 3 numbers (R, G, B)", j[key]);
  out = v;
}

// "0", "7", "12": what Python's str(int) writes, so each id has one spelling and no two keys name the same class.
bool canonical_id(const std::string& s, int& out) {
  if (s.empty() || s.size() > 9 || (s.size() > 1 && s[0] == '0')) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

// Keys whose value the weights fix: each one present must equal what the tensors have.
void check_against_weights(const json& j, const std::string& where,
                           std::initializer_list<std::pair<const char*, int>> from_weights) {
  for (const auto& [key, actual] : from_weights) check_config_matches(j, key, actual, where);
}

}  // namespace

json parse_config_json(const std::string& text, const std::string& where) {
  json j = parse_json_input(text, where);
  if (!j.is_object()) throw InputError(where + ": not a JSON object (got " + json_brief(j) + ")");
  return j;
}

std::optional<json> read_config_json(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  if (std::filesystem::is_directory(path, ec)) throw InputError(path + ": is a folder, not a config.json file");
  json j = read_json_file(path);
  if (!j.is_object()) throw InputError(path + ": not a JSON object (got " + json_brief(j) + ")");
  return j;
}

void read_config_key(const json& j, const char* key, int& out, const std::string& where) {
  read_int_in(j, key, out, where, std::numeric_limits<int>::min());
}

void read_config_key(const json& j, const char* key, double& out, const std::string& where) {
  if (!present(j, key)) return;
  const json& v = j[key];
  if (!v.is_number() || !std::isfinite(v.get<double>())) wrong(where, key, "a finite number", v);
  out = v.get<double>();
}

void read_config_key(const json& j, const char* key, bool& out, const std::string& where) {
  if (!present(j, key)) return;
  if (!j[key].is_boolean()) wrong(where, key, "true or false", j[key]);
  out = j[key].get<bool>();
}

void read_config_key(const json& j, const char* key, std::string& out, const std::string& where) {
  if (!present(j, key)) return;
  if (!j[key].is_string()) wrong(where, key, "a string", j[key]);
  out = j[key].get<std::string>();
}

void read_config_key(const json& j, const char* key, std::vector<std::string>& out, const std::string& where) {
  if (!present(j, key)) return;
  const json& v = j[key];
  if (!v.is_array()) wrong(where, key, "a list of strings", v);
  std::vector<std::string> items;
  for (const json& e : v) {
    if (!e.is_string()) wrong(where, key, "a list of strings", e);
    items.push_back(e.get<std::string>());
  }
  out = std::move(items);
}

void read_config_key(const json& j, const char* key, std::vector<double>& out, const std::string& where) {
  if (!present(j, key)) return;
  const json& v = j[key];
  if (!v.is_array()) wrong(where, key, "a list of finite numbers", v);
  std::vector<double> items;
  for (const json& e : v) {
    if (!e.is_number() || !std::isfinite(e.get<double>())) wrong(where, key, "a list of finite numbers", e);
    items.push_back(e.get<double>());
  }
  out = std::move(items);
}

void check_config_matches(const json& j, const char* key, int actual, const std::string& where) {
  int declared = actual;
  read_int_in(j, key, declared, where, 0);
  if (declared != actual)
    throw InputError(where + ": " + key + " is " + std::to_string(declared) + " but the weights have " +
                     std::to_string(actual));
}

void read_config_labels(const json& j, std::vector<std::string>& labels, const std::string& where) {
  read_config_key(j, "labels", labels, where);
  if (!present(j, "id2label")) return;
  const json& m = j["id2label"];
  if (!m.is_object()) wrong(where, "id2label", "an object mapping ids \"0\"..\"C-1\" to names", m);
  std::map<int, std::string> by_id;
  for (auto it = m.begin(); it != m.end(); ++it) {
    int id = 0;
    if (!canonical_id(it.key(), id))
      throw InputError(where + ": id2label key " + json_brief(json(it.key())) +
                       " is not a class id (\"0\", \"1\", ... without signs, leading zeros or suffixes)");
    if (!it.value().is_string())
      throw InputError(where + ": id2label[\"" + it.key() + "\"] must be a string, got " + json_brief(it.value()));
    by_id[id] = it.value().get<std::string>();
  }
  std::vector<std::string> out;
  for (const auto& [id, name] : by_id) {
    if (id != static_cast<int>(out.size()))
      throw InputError(where + ": id2label ids are not 0..C-1 (id " + std::to_string(out.size()) + " is missing)");
    out.push_back(name);
  }
  labels = std::move(out);
}

void read_vit_config_keys(const json& j, VitConfigKeys& k, const std::string& where) {
  read_int_in(j, "num_heads", k.num_heads, where, 1);
  read_int_in(j, "num_attention_heads", k.num_heads, where, 1);
  read_positive(j, "layer_norm_eps", k.layer_norm_eps, where);
  read_config_labels(j, k.labels, where);
  if (present(j, "preprocess")) {
    const json& p = j["preprocess"];
    if (!p.is_object()) wrong(where, "preprocess", "an object {preset, mean, std}", p);
    read_config_key(p, "preset", k.preprocess, where);
    read_three(p, "mean", k.mean, where);
    read_three(p, "std", k.std, where);
  } else {
    read_three(j, "image_mean", k.mean, where);  // Hugging Face preprocessor_config.json keys, if merged in
    read_three(j, "image_std", k.std, where);
  }
}

void read_bert_config_keys(const json& j, BertConfigKeys& k, const std::string& where) {
  read_int_in(j, "num_attention_heads", k.num_heads, where, 1);
  read_positive(j, "layer_norm_eps", k.layer_norm_eps, where);
  read_config_key(j, "hidden_act", k.hidden_act, where);
  read_config_key(j, "attention_mask_value", k.mask_value, where);
  read_config_labels(j, k.labels, where);
  read_int_in(j, "pad_token_id", k.pad_token_id, where, 0);
  check_against_weights(j, where, {{"vocab_size", k.vocab_size}, {"hidden_size", k.hidden_size},
                                   {"num_hidden_layers", k.num_layers}});
}

void read_distilbert_config_keys(const json& j, DistilBertConfigKeys& k, const std::string& where) {
  read_int_in(j, "n_heads", k.num_heads, where, 1);
  read_int_in(j, "num_attention_heads", k.num_heads, where, 1);
  read_config_key(j, "activation", k.activation, where);
  read_config_labels(j, k.labels, where);
  check_against_weights(j, where, {{"vocab_size", k.vocab_size}, {"dim", k.dim}, {"hidden_size", k.dim},
                                   {"n_layers", k.num_layers}, {"num_hidden_layers", k.num_layers},
                                   {"hidden_dim", k.hidden_dim}});
}

}  // namespace attnlens
