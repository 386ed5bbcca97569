#include "io/text_dataset.hpp"

#include <cstdint>
#include <filesystem>
#include <limits>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/array.hpp"
#include "io/json_input.hpp"

namespace attnlens {

namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot read data set file " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A class index: a decimal integer in [0, INT_MAX]; the TSV and the JSON readers share this rule.
constexpr std::int64_t kMaxLabel = std::numeric_limits<int>::max();

bool parse_label(const std::string& s, int& out) {
  if (s.empty() || s.size() > 10) return false;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v > kMaxLabel) return false;
  out = static_cast<int>(v);
  return true;
}

// The same rule for a JSON value: an integer (not 1.0 or 1e0) in [0, INT_MAX].
bool json_label(const nlohmann::json& v, int& out) {
  if (v.is_number_unsigned()) {
    if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxLabel)) return false;
    out = static_cast<int>(v.get<std::uint64_t>());
    return true;
  }
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > kMaxLabel) return false;
  out = static_cast<int>(v.get<std::int64_t>());
  return true;
}

void append_json(const fs::path& path, std::vector<TextExample>& out) {
  const nlohmann::json j = parse_json_input(read_all(path), path.string());
  if (!j.is_array()) throw InputError(path.string() + ": expected a JSON list of {\"text\", \"class\"} objects");
  for (const auto& item : j) {
    if (!item.is_object() || !item.contains("text") || !item["text"].is_string())
      throw InputError(path.string() + ": item " + std::to_string(out.size()) + " has no \"text\" string");
    TextExample e;
    e.text = item["text"].get<std::string>();
    e.index = static_cast<std::int64_t>(out.size());
    for (const char* key : {"class", "label"})
      if (item.contains(key) && !item[key].is_null()) {
        if (!json_label(item[key], e.label))
          throw InputError(path.string() + ": item " + std::to_string(out.size()) + ": \"" + key +
                           "\" must be a class index (an integer in [0, " + std::to_string(kMaxLabel) + "]), got " +
                           json_brief(item[key]));
      }
    out.push_back(std::move(e));
  }
}

void append_lines(const fs::path& path, std::vector<TextExample>& out) {
  std::istringstream in(read_all(path));
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    TextExample e;
    const auto tab = line.find('\t');
    if (tab == std::string::npos) {
      e.text = line;
    } else {
      const std::string label = line.substr(0, tab);
      e.text = line.substr(tab + 1);
      // std::stoi would also take " 1" and "+1"; a class index is digits only.
      if (!label.empty() && !parse_label(label, e.label))
        throw InputError(path.string() + ":" + std::to_string(number) + ": label '" + one_short_line(label, 40) +
                         "' is not a class index (an integer in [0, " + std::to_string(kMaxLabel) + "])");
    }
    e.index = static_cast<std::int64_t>(out.size());
    out.push_back(std::move(e));
  }
}

}  // namespace

TextSplit parse_text_split(const std::string& name) {
  if (name == "all") return TextSplit::All;
  if (name == "train") return TextSplit::Train;
  if (name == "test") return TextSplit::Test;
  throw InputError("--split must be all, train or test, got '" + name + "'");
}

std::vector<TextExample> load_text_dataset(const std::string& path, TextSplit split) {
  const fs::path p = path;
  std::vector<TextExample> all;
  if (fs::is_directory(p)) {
    for (const char* name : {"amazon.json", "imdb.json", "yelp.json"}) {
      if (!fs::exists(p / name))
        throw InputError(p.string() + " has no " + name + " (fetch the review sentences with "
                         "bash tools/fetch_sentiment.sh)");
      append_json(p / name, all);
    }
  } else if (!fs::exists(p)) {
    throw InputError("data set not found: " + path);
  } else if (p.extension() == ".json") {
    append_json(p, all);
  } else {
    append_lines(p, all);
  }
  if (all.empty()) throw InputError("data set " + path + " holds no texts");
  std::vector<TextExample> out;
  for (auto& e : all) {
    // Blank items keep their index (the split rule counts them) but are no texts: each sentiment@5.0.2 file ends
    // with {"text": "", "class": null}.
    if (e.text.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    const bool test = e.index % 5 == 4;
    if (split == TextSplit::All || (split == TextSplit::Test) == test) out.push_back(std::move(e));
  }
  return out;
}

}  // namespace attnlens
