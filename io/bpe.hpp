// Byte-level BPE tokenisation from a Hugging Face vocab.json + merges.txt, in the two flavours attnlens' models
// need: RoBERTa's (GPT-2 pre-tokenisation, no normalisation, `<s> A </s></s> B </s>`; MODELS.md E.3) and CLIP's
// (lowercased, whitespace collapsed, "</w>" word ends, `<|startoftext|> A <|endoftext|>`, context 77; MODELS.md
// C.7). Both map UTF-8 bytes to symbols through GPT-2's bytes_to_unicode table (C.8) and merge pairs by rank.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../core/api.hpp"
#include "vocab.hpp"
#include "wordpiece.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct BpeOptions {
  enum class Flavor {
    /// RoBERTa/GPT-2 (Hugging Face RobertaTokenizer): no normalisation; pre-tokens by GPT-2's regex (a leading
    /// space stays on the word, digits grouped); BPE without a word-end marker; the special tokens of the
    /// vocabulary spelled in the text are split out first (`<mask>` takes the whitespace before it).
    Roberta,
    /// CLIP (openai/CLIP simple_tokenizer, Hugging Face CLIPTokenizer): NFC, whitespace runs collapsed to one space
    /// and stripped, Python's str.lower(); pre-tokens by CLIP's regex (letter runs, single digits, punctuation
    /// runs, `<|startoftext|>`/`<|endoftext|>` spelled in the text); "</w>" on each word's last symbol. ftfy's
    /// fix_text, which the references run first, is not reproduced (it has no specification): give clean text.
    /// OpenAI and open_clip also unescape HTML entities; Hugging Face's CLIPTokenizer, whose files this reads,
    /// does not, and neither does this.
    Clip
  };
  Flavor flavor = Flavor::Roberta;
  /// Most tokens encode() returns, the special tokens included: 512 for RoBERTa checkpoints (514 positions less
  /// the padding offset), 77 for CLIP (its context length). At least 2.
  int max_length = 512;
  /// RoBERTa: put a space before a text that does not start with whitespace (Hugging Face's add_prefix_space).
  bool add_prefix_space = false;
  /// RoBERTa: text spelling a special token of the vocabulary (`<s>`, `</s>`, `<unk>`, `<pad>`, `<mask>`) becomes
  /// that token, as Hugging Face does by default; off: ordinary text. (CLIP's regex always keeps its two.)
  bool recognise_special_tokens = true;
  /// Pad every encoding to max_length with pad_id() (attention mask 0): CLIP's fixed context of 77 (open_clip
  /// pads with id 0). Off: no padding.
  bool pad_to_max_length = false;
};

class ByteLevelBpeTokenizer {
 public:
  /// Reads `vocab_json` (a JSON object: symbol string -> id, ids exactly 0..N-1) and `merges_txt` (an optional
  /// "#version" header line, then one "first second" pair per line in rank order; blank lines skipped; CRLF
  /// read as LF; the last line needs no newline, unlike Hugging Face's slow tokenizer, which drops it then).
  /// CLIP uses at most its first 48,894 merges (49,152 - 256 - 2), as both references do. InputError naming the
  /// file and line for: a missing or unreadable file, invalid JSON or UTF-8, an id that is not 0..N-1 or repeats,
  /// a malformed or repeated merge line, a byte symbol (CLIP: also with "</w>") missing from the vocabulary, a
  /// missing special token the flavour needs (RoBERTa `<s>` and `</s>`; CLIP `<|startoftext|>` and
  /// `<|endoftext|>`), a merge whose result the vocabulary lacks when there is no unknown token to stand for it,
  /// and an option out of range.
  static ByteLevelBpeTokenizer load(const std::string& vocab_json, const std::string& merges_txt,
                                    const BpeOptions& options);
  /// The same from the two files' contents (`vocab_name`, `merges_name` name them in messages).
  static ByteLevelBpeTokenizer from_strings(std::string_view vocab_json, std::string_view merges_txt,
                                            const BpeOptions& options, const std::string& vocab_name = "vocab.json",
                                            const std::string& merges_name = "merges.txt");

  /// A vocab.json as a Vocabulary (the checks of load()).
  static Vocabulary read_vocab_json(const std::string& path);

  /// The tokens of `text` before the special tokens are added: every one is in the vocabulary (or is the unknown
  /// token). Throws InputError "text is not valid UTF-8 (byte offset N)".
  std::vector<std::string> tokenize(std::string_view text) const;
  /// The pre-tokens of `text` (after the flavour's normalisation, before bytes become symbols), as UTF-8: what the
  /// flavour's regex splits the text into.
  std::vector<std::string> pre_tokenize(std::string_view text) const;
  /// BPE of one pre-token (UTF-8; its bytes become symbols first): the merged symbols, "</w>" ending the last for
  /// CLIP. "" gives none.
  std::vector<std::string> bpe(std::string_view pre_token) const;

  /// RoBERTa: `<s> A </s>` or `<s> A </s></s> B </s>`; CLIP: `<|startoftext|> A <|endoftext|>` (one text only).
  /// Too long: A is cut from its end (for a pair the longer of A and B loses its last token until it fits, B on a
  /// tie, as Hugging Face's longest_first), so the closing special token stays, which for CLIP is open_clip's
  /// "first 77, the last set to <|endoftext|>". token_type_ids are all 0; attention_mask 1 except for padding.
  /// InputError for invalid UTF-8, a pair for CLIP, and a pair with max_length < 5 (RoBERTa's four special tokens
  /// and one token of each text).
  Encoding encode(std::string_view text, std::optional<std::string_view> text_b = {}) const;

  const Vocabulary& vocabulary() const { return vocab_; }
  const BpeOptions& options() const { return options_; }
  std::size_t merge_count() const { return ranks_.size(); }

  /// `<s>` / `<|startoftext|>`: the first token of every encoding (RoBERTa's classification token).
  std::int64_t bos_id() const { return bos_id_; }
  /// `</s>` / `<|endoftext|>`: ends every text (RoBERTa's separator; CLIP's pooled token).
  std::int64_t eos_id() const { return eos_id_; }
  /// RoBERTa `<pad>` (InputError when the vocabulary lacks it); CLIP 0, what open_clip pads with.
  std::int64_t pad_id() const;
  /// RoBERTa `<unk>`; CLIP `<|endoftext|>` (Hugging Face's unk_token). InputError when RoBERTa's is missing.
  std::int64_t unk_id() const;
  /// RoBERTa `<mask>`; InputError when the vocabulary lacks it, and always for CLIP, which has none.
  std::int64_t mask_id() const;
  const std::string& bos_token() const { return vocab_.token(bos_id_); }
  const std::string& eos_token() const { return vocab_.token(eos_id_); }

 private:
  ByteLevelBpeTokenizer(Vocabulary vocab, BpeOptions options) : vocab_(std::move(vocab)), options_(options) {}
  void tokenize_chunk(std::string_view chunk, std::vector<std::string>& out) const;
  std::int64_t id_of(const std::string& token) const;

  Vocabulary vocab_;
  BpeOptions options_;
  std::unordered_map<std::string, int> ranks_;  ///< "first second" -> rank
  std::int64_t bos_id_ = 0, eos_id_ = 0;
  std::optional<std::int64_t> pad_id_, unk_id_, mask_id_;
  /// RoBERTa's special tokens present in the vocabulary, longest first (what tokenize() splits out of text).
  std::vector<std::string> special_tokens_;
};

}  // namespace attnlens
ATTNLENS_API_END
