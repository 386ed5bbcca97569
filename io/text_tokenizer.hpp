// The tokenizer of a text model's folder, whichever kind it is: BERT's WordPiece (vocab.txt) or a byte-level BPE
// (vocab.json + merges.txt: RoBERTa's or CLIP's), behind one interface for the text commands and models.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "../core/api.hpp"
#include "bpe.hpp"
#include "vocab.hpp"
#include "wordpiece.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct TextTokenizerSettings {
  /// auto (from the folder's files), wordpiece, roberta or clip.
  std::string kind = "auto";
  /// WordPiece: override the folder's do_lower_case (tokenizer_config.json, then config.json; default true).
  std::optional<bool> lowercase;
  /// Most tokens per encoding, the special tokens included.
  int max_length = 512;
};

class TextTokenizer {
 public:
  explicit TextTokenizer(WordPieceTokenizer tokenizer) : impl_(std::move(tokenizer)) {}
  explicit TextTokenizer(ByteLevelBpeTokenizer tokenizer) : impl_(std::move(tokenizer)) {}

  /// `path`: a model folder, or a vocabulary file (vocab.txt; vocab.json with merges.txt beside it). With kind
  /// auto, vocab.txt makes a WordPiece tokenizer and vocab.json + merges.txt a byte-level BPE, CLIP's when the
  /// vocabulary has <|startoftext|> and RoBERTa's otherwise. A folder's do_lower_case is read from
  /// tokenizer_config.json, then config.json (WordPiece only). InputError for a folder with neither set of files
  /// (naming what was looked for), an unknown kind, a kind whose files are missing, or a bad file.
  static TextTokenizer load(const std::string& path, const TextTokenizerSettings& settings = {});

  /// "wordpiece", "roberta" or "clip".
  std::string kind() const;
  Encoding encode(std::string_view text, std::optional<std::string_view> text_b = std::nullopt) const;
  const Vocabulary& vocabulary() const;
  int max_length() const;

  /// The token every encoding starts with ([CLS], <s>, <|startoftext|>) and the one that ends a text ([SEP],
  /// </s>, <|endoftext|>): what the explanations leave out of the words they rank.
  std::int64_t cls_id() const;
  std::int64_t sep_id() const;
  /// InputError when the vocabulary lacks them (CLIP has no mask token).
  std::int64_t pad_id() const;
  std::int64_t unk_id() const;
  std::int64_t mask_id() const;
  const std::string& cls_token() const { return vocabulary().token(cls_id()); }
  const std::string& sep_token() const { return vocabulary().token(sep_id()); }
  /// The padding token's spelling, or "" when there is none.
  std::string pad_token() const;

  /// The tokenizer itself, or nullptr when it is of the other kind.
  const WordPieceTokenizer* wordpiece() const { return std::get_if<WordPieceTokenizer>(&impl_); }
  const ByteLevelBpeTokenizer* bpe() const { return std::get_if<ByteLevelBpeTokenizer>(&impl_); }

 private:
  std::variant<WordPieceTokenizer, ByteLevelBpeTokenizer> impl_;
};

}  // namespace attnlens
ATTNLENS_API_END
