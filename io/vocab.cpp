#include "io/vocab.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>

#include "core/array.hpp"

namespace attnlens {

std::optional<std::size_t> first_invalid_utf8(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  std::size_t i = 0;
  while (i < text.size()) {
    const unsigned char lead = byte(i);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    // Length and the allowed range of the second byte follow Unicode Table 3-7; narrowing the second byte is what
    // rejects overlong forms (E0, F0), surrogates (ED) and code points above U+10FFFF (F4).
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      return i;  // a continuation byte without a lead, C0/C1 (always overlong) or F5..FF
    }
    if (i + length > text.size()) return i;
    if (byte(i + 1) < low || byte(i + 1) > high) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return i;
    }
    i += length;
  }
  return std::nullopt;
}

Vocabulary Vocabulary::build(std::string name, std::vector<std::string> tokens, const char* unit, int first_number) {
  if (tokens.empty()) throw InputError("vocabulary '" + name + "' is empty");
  Vocabulary v;
  v.name_ = std::move(name);
  v.ids_.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string where = v.name_ + " " + unit + " " + std::to_string(i + first_number);
    if (const auto bad = first_invalid_utf8(tokens[i])) {
      throw InputError(where + ": token is not valid UTF-8 (byte offset " + std::to_string(*bad) + ")");
    }
    // Hugging Face lets a repeated token silently take the later id, which leaves an id that no token maps to; a
    // repeated line is almost always a damaged file, so it is an error here.
    const auto [it, inserted] = v.ids_.emplace(tokens[i], static_cast<std::int64_t>(i));
    if (!inserted) {
      throw InputError(where + ": duplicate token '" + tokens[i] + "' (first at " + unit + " " +
                       std::to_string(it->second + first_number) + ")");
    }
  }
  v.tokens_ = std::move(tokens);
  return v;
}

Vocabulary Vocabulary::load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw InputError("cannot read vocabulary '" + path + "': " +
                     (std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!in.good() && !in.eof()) throw InputError("cannot read vocabulary '" + path + "'");
  if (bytes.empty()) throw InputError("vocabulary '" + path + "' is empty");

  std::vector<std::string> tokens;
  std::size_t start = 0;
  while (start < bytes.size()) {
    std::size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    std::string line = bytes.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    tokens.push_back(std::move(line));
    start = end + 1;
  }
  return build(path, std::move(tokens), "line", 1);
}

Vocabulary Vocabulary::from_tokens(std::vector<std::string> tokens, std::string name) {
  return build(std::move(name), std::move(tokens), "token", 0);
}

std::optional<std::int64_t> Vocabulary::find(std::string_view token) const {
  const auto it = ids_.find(std::string(token));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::int64_t Vocabulary::require(std::string_view token) const {
  if (const auto id = find(token)) return *id;
  throw InputError("vocabulary '" + name_ + "' has no " + std::string(token) + " token");
}

const std::string& Vocabulary::token(std::int64_t id) const {
  if (id < 0 || id >= size()) {
    throw InputError("token id " + std::to_string(id) + " is out of range for vocabulary '" + name_ + "' of " +
                     std::to_string(size()) + " tokens");
  }
  return tokens_[static_cast<std::size_t>(id)];
}

}  // namespace attnlens
