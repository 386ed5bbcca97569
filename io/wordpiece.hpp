// BERT tokenisation as Hugging Face's (slow, Python) BertTokenizer does it: BasicTokenizer, then WordPiece, then the
// [CLS] A [SEP] (B [SEP]) layout (spec section 9, "BERT uncased").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../core/api.hpp"
#include "vocab.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct TokenizerOptions {
  /// Lowercase each word, and then strip accents (NFD, drop category Mn): bert-*-uncased. Off: case and accents
  /// are kept (bert-*-cased). Hugging Face can strip accents without lowercasing; that combination is not offered.
  /// Lowercasing is character by character, as Hugging Face's slow tokenizer does it: "ΟΔΟΣ" -> "οδοσ" (Python's
  /// str.lower() of the whole word would give the final form "οδος").
  bool lowercase = true;
  /// NFC-normalise the text before splitting it into words, as Hugging Face transformers has done since 2023 (PR
  /// #22280); Google's original tokenizer, pytorch_pretrained_bert and older transformers do not.
  bool nfc = true;
  /// Text spelling a special token of the vocabulary ("[MASK]", exactly, case-sensitive) becomes that token, even
  /// inside a word, as Hugging Face's tokenizers do by default (its added-tokens trie); off: it is ordinary text.
  /// A word that spells one only once the text is cleaned ("[MA" U+200B "SK]", "[MASK" U+0000 "]") stays one
  /// token too in cased mode (Hugging Face's never_split); lowercased, it no longer matches and is split.
  bool recognise_special_tokens = true;
  /// Most tokens encode() returns, [CLS] and [SEP] included (at least 2).
  int max_length = 512;
  /// Words with more code points than this become [UNK] (at least 1).
  int max_chars_per_word = 100;
  std::string unk = "[UNK]", cls = "[CLS]", sep = "[SEP]", pad = "[PAD]", mask = "[MASK]";
};

/// One encoded sequence or pair, without padding.
struct Encoding {
  std::vector<std::string> tokens;
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> token_type_ids;  ///< 0 up to and including the first [SEP], 1 after it
  std::vector<std::int64_t> attention_mask;  ///< all 1 (no padding)
  bool truncated = false;                    ///< tokens were dropped to fit max_length
};

/// Hugging Face's longest_first truncation, shared by the tokenizers: drops tokens from the end until `a` and `b`
/// together hold at most `room`; one text (`pair` false) from the end of `a`, a pair from the longer one, from `b`
/// on a tie (its loop pops A only while A is strictly longer). Returns whether anything was dropped.
bool truncate_longest_first(std::vector<std::string>& a, std::vector<std::string>& b, std::size_t room, bool pair);

class WordPieceTokenizer {
 public:
  /// Throws InputError when `vocab` lacks the unk, cls or sep token (every encode() needs them) or an option is out
  /// of range. The pad and mask tokens may be missing: pad_id() and mask_id() throw then, when first asked.
  WordPieceTokenizer(Vocabulary vocab, TokenizerOptions options = {});

  /// BasicTokenizer: splits `text` into words and punctuation marks (spec 9), lowercased and accent-stripped when
  /// options.lowercase. Special tokens get no special treatment here. Throws InputError "text is not valid UTF-8
  /// (byte offset N)".
  std::vector<std::string> basic_tokenize(std::string_view text) const;
  /// WordPiece of one word (no normalisation): greedy longest-match-first, continuation pieces prefixed "##"; the
  /// whole word is [UNK] when it is longer than max_chars_per_word code points or some position matches nothing.
  /// "" gives no pieces.
  std::vector<std::string> wordpiece(std::string_view word) const;
  /// Special tokens (if recognised), then basic_tokenize, then wordpiece of each word: every returned token is in
  /// the vocabulary.
  std::vector<std::string> tokenize(std::string_view text) const;
  /// [CLS] A [SEP] or [CLS] A [SEP] B [SEP], truncated to max_length: from the end of A for one text; for a pair the
  /// last token of the longer of A and B is dropped until it fits (of B on a tie, as Hugging Face's longest_first).
  /// A text that is empty or has no tokens contributes none: "" encodes to [CLS] [SEP]; callers that need content
  /// must check for that. Throws InputError for invalid UTF-8 and for a pair when max_length < 3.
  Encoding encode(std::string_view text_a, std::optional<std::string_view> text_b = std::nullopt) const;

  const Vocabulary& vocabulary() const { return vocab_; }
  const TokenizerOptions& options() const { return options_; }
  std::int64_t cls_id() const { return cls_id_; }
  std::int64_t sep_id() const { return sep_id_; }
  std::int64_t unk_id() const { return unk_id_; }
  /// Throw InputError "vocabulary '...' has no [PAD] token" when the vocabulary lacks it.
  std::int64_t pad_id() const;
  std::int64_t mask_id() const;

 private:
  Vocabulary vocab_;
  TokenizerOptions options_;
  std::int64_t cls_id_, sep_id_, unk_id_;
  std::optional<std::int64_t> pad_id_, mask_id_;
  /// The special tokens present in the vocabulary, longest first (what tokenize() splits out of text).
  std::vector<std::string> special_tokens_;
};

}  // namespace attnlens
ATTNLENS_API_END
