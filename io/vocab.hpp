// A BERT WordPiece vocabulary: `vocab.txt`, one token per line, the token's id is its 0-based line number (as
// Hugging Face's `load_vocab` reads it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Byte offset of the first byte of `text` that does not start a well-formed UTF-8 sequence (Unicode Table 3-7:
/// no overlong forms, no surrogates, nothing above U+10FFFF, no lone or missing continuation bytes), or nullopt
/// when all of `text` is well-formed.
std::optional<std::size_t> first_invalid_utf8(std::string_view text);

/// Token <-> id table of a WordPiece model. Immutable once built.
class Vocabulary {
 public:
  /// Reads a `vocab.txt`: lines end in "\n" (a "\r" before it is dropped, so CRLF files read the same); a final
  /// newline does not start another token, but an empty line in the middle is the token "" (ids stay line numbers).
  /// Throws InputError naming `path` for: a missing or unreadable file, an empty file, a line that is not valid
  /// UTF-8, and a token that repeats an earlier line (naming both lines).
  static Vocabulary load(const std::string& path);
  /// Builds a vocabulary from tokens in id order; the same checks as load() (messages say "token N" instead of
  /// "line N"). `name` is what messages and name() call it (a file such as vocab.json the tokens came from).
  static Vocabulary from_tokens(std::vector<std::string> tokens, std::string name = "<tokens>");

  std::int64_t size() const { return static_cast<std::int64_t>(tokens_.size()); }
  /// The id of `token`, or nullopt when it is not in the vocabulary.
  std::optional<std::int64_t> find(std::string_view token) const;
  /// The id of `token`; throws InputError "vocabulary '<name>' has no [CLS] token" when it is absent.
  std::int64_t require(std::string_view token) const;
  /// The token with id `id`; throws InputError when `id` is outside [0, size()).
  const std::string& token(std::int64_t id) const;
  /// The file it was read from, or "<tokens>" (for messages).
  const std::string& name() const { return name_; }

 private:
  Vocabulary() = default;
  static Vocabulary build(std::string name, std::vector<std::string> tokens, const char* unit, int first_number);

  std::string name_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int64_t> ids_;
};

}  // namespace attnlens
ATTNLENS_API_END
