// The WordPiece tokenizer (io/wordpiece): UTF-8 decoding, Unicode normalisation and categories, punctuation and CJK
// splitting, greedy longest-match pieces, special tokens inside text, pairs and truncation. The text and the
// options come from the input; the vocabulary is fixed.
#include <algorithm>

#include "io/wordpiece.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

const attnlens::Vocabulary& vocabulary() {
  static const attnlens::Vocabulary v = [] {
    std::vector<std::string> t = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (const char* w :
         {"the",  "a",     "un",    "##aff", "##able", "hello", "world", "##s", "##ing", "##ed", "caf", "##e", "##é",
          "café", "naive", "naïve", "東",    "京",     "!",     ",",     ".",   "'",     "-",    "don", "##'", "t",
          "[",    "]",     "mask",  "##a",   "##b",    "##c",   "ß",     "ss",  "İ",     "i̇",    "ǅ",   "ﬁ",   "fi"})
      t.push_back(w);
    for (char c = 'a'; c <= 'z'; ++c) {
      t.push_back(std::string(1, c));
      t.push_back("##" + std::string(1, c));
    }
    for (char c = '0'; c <= '9'; ++c) t.push_back(std::string(1, c));
    std::sort(t.begin() + 5, t.end());
    t.erase(std::unique(t.begin() + 5, t.end()), t.end());
    return attnlens::Vocabulary::from_tokens(t);
  }();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace attnlens;
  if (size < 3) return 0;
  TokenizerOptions o;
  o.lowercase = data[0] & 1;
  o.nfc = data[0] & 2;
  o.recognise_special_tokens = data[0] & 4;
  const bool pair = data[0] & 8;
  o.max_length = data[1];  // 0 and 1 are out of range on purpose: the constructor must say so
  o.max_chars_per_word = data[2] % 128;
  const std::string_view text = fuzz::as_bytes(data + 3, size - 3);
  // A pair is split at the first record separator (0x1e), which text rarely holds.
  const std::size_t cut = pair ? text.find('\x1e') : std::string_view::npos;
  const std::string_view a = text.substr(0, cut);
  const std::optional<std::string_view> b =
      cut == std::string_view::npos ? std::nullopt : std::optional<std::string_view>(text.substr(cut + 1));
  fuzz::only_input_errors([&] {
    const WordPieceTokenizer tok(vocabulary(), o);
    const Encoding e = tok.encode(a, b);
    if (e.tokens.size() != e.ids.size() || e.ids.size() != e.token_type_ids.size() ||
        static_cast<int>(e.ids.size()) > o.max_length || e.ids.size() < 2)
      fuzz::invariant_failed("encoding sizes");
    for (std::size_t i = 0; i < e.ids.size(); ++i)
      if (vocabulary().token(e.ids[i]) != e.tokens[i]) fuzz::invariant_failed("token/id mismatch");
    for (const std::string& word : tok.basic_tokenize(a))
      for (const std::string& piece : tok.wordpiece(word))
        if (!vocabulary().find(piece)) fuzz::invariant_failed("a piece outside the vocabulary");
  });
  return 0;
}
