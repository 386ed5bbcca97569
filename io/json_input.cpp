#include "io/json_input.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <vector>

#include "core/array.hpp"

namespace attnlens {

using nlohmann::json;

std::string one_short_line(const std::string& message, std::size_t max_chars) {
  std::string out;
  for (char c : message) {
    if (out.size() >= max_chars) {
      out += "...";
      break;
    }
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  return out;
}

std::string json_brief(const json& value) {
  switch (value.type()) {
    case json::value_t::array:
    case json::value_t::object: {
      // A small flat container reads best as written ([1,2], {"a":1}); its elements are scalars, so dumping it
      // recurses one level only.
      bool flat = value.size() <= 8;
      for (auto it = value.begin(); flat && it != value.end(); ++it) flat = !it->is_structured();
      if (flat) {
        const std::string s = value.dump(-1, ' ', true, json::error_handler_t::replace);
        if (s.size() <= 60) return s;
      }
      if (value.is_array())
        return "an array of " + std::to_string(value.size()) + (value.size() == 1 ? " value" : " values");
      return "an object of " + std::to_string(value.size()) + (value.size() == 1 ? " key" : " keys");
    }
    case json::value_t::string: {
      // ASCII-only spelling, so cutting it never splits a UTF-8 sequence.
      const std::string s = value.dump(-1, ' ', true, json::error_handler_t::replace);
      return s.size() <= 42 ? s : s.substr(0, 40) + "...\"";
    }
    case json::value_t::discarded:
      return "nothing";
    default:
      return value.dump();  // null, a boolean or a number: a few characters
  }
}

json parse_json_input(std::string_view text, const std::string& where, int max_depth) {
  // nlohmann's lexer takes a NUL for the end of the input, so "{}\0junk" would pass; JSON text never holds one.
  if (text.find('\0') != std::string_view::npos) throw InputError(where + ": invalid JSON: it contains a NUL byte");
  // One set of keys per open object (nothing for arrays), so a repeated key is caught in any object.
  std::vector<std::set<std::string>> open;
  std::vector<bool> is_object;
  const auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (static_cast<int>(is_object.size()) >= max_depth)
          throw InputError(where + ": JSON nests deeper than " + std::to_string(max_depth) + " levels");
        is_object.push_back(event == json::parse_event_t::object_start);
        if (is_object.back()) open.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!is_object.empty()) {
          if (is_object.back()) open.pop_back();
          is_object.pop_back();
        }
        break;
      case json::parse_event_t::key:
        if (!open.empty() && !open.back().insert(parsed.get<std::string>()).second)
          throw InputError(where + ": key " + json_brief(parsed) + " appears twice in one JSON object");
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    throw InputError(where + ": invalid JSON: " + one_short_line(e.what()));
  }
}

json read_json_file(const std::string& path, int max_depth) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open " + path + ": " + std::strerror(errno));
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw InputError("cannot read " + path);
  return parse_json_input(text, path, max_depth);
}

}  // namespace attnlens
