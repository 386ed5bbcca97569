// JSON from users' files (config.json, samples.json, text data sets, safetensors headers), read with the limits a
// hostile file needs: bounded nesting, repeated keys refused, and messages that never echo more than a few bytes of
// the input (a recursive dump of a deeply nested value overflows the stack, and a huge one floods the terminal).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Deepest nesting of arrays and objects accepted by parse_json_input. Every format attnlens reads nests at most
/// four levels; the limit only stops pathological files early.
inline constexpr int kMaxJsonDepth = 64;

/// Parses `text` (the whole content of `where`). Throws InputError naming `where` for invalid JSON (nlohmann's
/// position and reason, cut to a short line), nesting deeper than `max_depth`, or a key repeated within one object
/// (JSON leaves that undefined; nlohmann would silently keep the last one).
nlohmann::json parse_json_input(std::string_view text, const std::string& where, int max_depth = kMaxJsonDepth);

/// Reads the file `path` and parses it as parse_json_input does. InputError when it cannot be read.
nlohmann::json read_json_file(const std::string& path, int max_depth = kMaxJsonDepth);

/// A short, one-line description of a JSON value for messages: scalars as written (strings cut to 40 characters,
/// non-ASCII escaped), arrays and objects by kind and size only. Never recursive.
std::string json_brief(const nlohmann::json& value);

/// `message` cut to `max_chars` characters on one line (control characters shown as '?'): for texts that quote
/// user input, such as nlohmann's "last read: ..." in parse errors.
std::string one_short_line(const std::string& message, std::size_t max_chars = 200);

}  // namespace attnlens
ATTNLENS_API_END
