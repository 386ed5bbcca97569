// Byte-level BPE (MODELS.md C.7, C.8, E.3): the byte table, both pre-tokenisers, the merge loop, special tokens,
// layouts, truncation and bad files. Every expected output was worked out by hand from those rules (and GPT-2's
// and CLIP's regexes as Python's `regex` module matches them), not recorded from this code.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/array.hpp"
#include "io/bpe.hpp"

namespace attnlens {
namespace {

using Tokens = std::vector<std::string>;
using Ids = std::vector<std::int64_t>;
using Flavor = BpeOptions::Flavor;

/// bytes_to_unicode written out from C.8 for the test: printable bytes keep their code point, the other 68 take
/// U+0100.. in byte order.
std::vector<std::string> byte_symbols() {
  std::vector<std::string> out;
  std::vector<int> order;
  for (int b = 33; b <= 126; ++b) order.push_back(b);
  for (int b = 161; b <= 172; ++b) order.push_back(b);
  for (int b = 174; b <= 255; ++b) order.push_back(b);
  std::vector<char32_t> cp(256, 0);
  for (int b : order) cp[static_cast<size_t>(b)] = static_cast<char32_t>(b);
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b)
    if (cp[static_cast<size_t>(b)] == 0) cp[static_cast<size_t>(b)] = next++;
  // Vocabulary order: the printable ones first, then the remapped ones (as CLIP's vocabulary lists them).
  for (int b = 0; b < 256; ++b)
    if (std::find(order.begin(), order.end(), b) == order.end()) order.push_back(b);
  for (int b : order) {
    const char32_t c = cp[static_cast<size_t>(b)];
    std::string s;
    if (c < 0x80) {
      s += static_cast<char>(c);
    } else {
      s += static_cast<char>(0xC0 | (c >> 6));
      s += static_cast<char>(0x80 | (c & 0x3F));
    }
    out.push_back(s);
  }
  return out;
}

std::string vocab_json(const Tokens& tokens) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < tokens.size(); ++i) j[tokens[i]] = i;
  return j.dump();
}

// RoBERTa: <s> <pad> </s> <unk> (0-3), the 256 byte symbols (4-259), the merges' results (260-), <mask> last.
const std::vector<std::pair<std::string, std::string>> kRobertaMerges = {
    {"\xc4\xa0", "w"}, {"o", "r"}, {"\xc4\xa0w", "or"}, {"l", "d"}, {"\xc4\xa0wor", "ld"},
    {"H", "e"},        {"l", "l"}, {"He", "ll"},        {"Hell", "o"}, {"a", "a"}};

Tokens roberta_tokens() {
  Tokens t = {"<s>", "<pad>", "</s>", "<unk>"};
  for (const auto& s : byte_symbols()) t.push_back(s);
  for (const auto& [a, b] : kRobertaMerges) t.push_back(a + b);
  t.push_back("<mask>");
  return t;
}

std::string merges_txt(const std::vector<std::pair<std::string, std::string>>& merges) {
  std::string out = "#version: 0.2\n";
  for (const auto& [a, b] : merges) out += a + " " + b + "\n";
  return out;
}

ByteLevelBpeTokenizer roberta(BpeOptions o = {}) {
  o.flavor = Flavor::Roberta;
  return ByteLevelBpeTokenizer::from_strings(vocab_json(roberta_tokens()), merges_txt(kRobertaMerges), o);
}

std::int64_t byte_id(unsigned char b) {  // id of a byte symbol in roberta_tokens()
  const auto symbols = byte_symbols();
  std::vector<int> order;
  for (int x = 33; x <= 126; ++x) order.push_back(x);
  for (int x = 161; x <= 172; ++x) order.push_back(x);
  for (int x = 174; x <= 255; ++x) order.push_back(x);
  for (int x = 0; x < 256; ++x)
    if (std::find(order.begin(), order.end(), x) == order.end()) order.push_back(x);
  return 4 + (std::find(order.begin(), order.end(), b) - order.begin());
}

// CLIP: the 256 byte symbols (0-255), the same with "</w>" (256-511), the merges' results (512-518), then
// <|startoftext|> 519 and <|endoftext|> 520.
const std::vector<std::pair<std::string, std::string>> kClipMerges = {
    {"p", "h"}, {"ph", "o"}, {"t", "o</w>"}, {"pho", "to</w>"}, {"o", "f</w>"}, {"c", "a"}, {"ca", "t</w>"}};

ByteLevelBpeTokenizer clip(BpeOptions o = {}) {
  o.flavor = Flavor::Clip;
  if (o.max_length == 512) o.max_length = 77;
  Tokens t = byte_symbols();
  for (const auto& s : byte_symbols()) t.push_back(s + "</w>");
  for (const auto& [a, b] : kClipMerges) t.push_back(a + b);
  t.push_back("<|startoftext|>");
  t.push_back("<|endoftext|>");
  return ByteLevelBpeTokenizer::from_strings(vocab_json(t), merges_txt(kClipMerges), o);
}

template <typename F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError thrown";
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---------------------------------------------------------------------------------------------------------------
// RoBERTa / GPT-2
// ---------------------------------------------------------------------------------------------------------------

TEST(BpeRoberta, Gpt2PreTokenisation) {
  const auto tok = roberta();
  // MODELS.md E.3's example (checked there with Python's regex): a run of spaces gives all but its last space
  // to a token of their own; a space leads the next word; "'s" is a contraction; digits stay together.
  EXPECT_EQ(tok.pre_tokenize("Hello  world's 2024!! \n ok"),
            (Tokens{"Hello", " ", " world", "'s", " 2024", "!!", " \n", " ok"}));
  // Tabs are not U+0020, so they never lead a word; a trailing run is one token.
  EXPECT_EQ(tok.pre_tokenize("a\t\tb  "), (Tokens{"a", "\t", "\t", "b", "  "}));
  // Contractions are case-sensitive and checked only where a token starts: "'S" is punctuation + letters, and a
  // punctuation run swallows a following apostrophe.
  EXPECT_EQ(tok.pre_tokenize("IT'S x!!'s 're"), (Tokens{"IT", "'", "S", " x", "!!'", "s", " '", "re"}));
  // Letters, numbers and other characters are three kinds of run: "ab12" splits, "½" is a number (No).
  EXPECT_EQ(tok.pre_tokenize("ab12\u00bd,x"), (Tokens{"ab", "12\u00bd", ",", "x"}));
  // U+00A0 is whitespace for \s but not U+0020, so it never leads a word.
  EXPECT_EQ(tok.pre_tokenize("a\u00a0b"), (Tokens{"a", "\u00a0", "b"}));
  EXPECT_EQ(tok.pre_tokenize(""), Tokens{});
}

TEST(BpeRoberta, MergesAndIds) {
  const auto tok = roberta();
  EXPECT_EQ(tok.bpe("Hello"), (Tokens{"Hello"}));
  EXPECT_EQ(tok.bpe(" world"), (Tokens{"\xc4\xa0world"}));  // the space byte is the symbol U+0120 'Ġ'
  const Encoding e = tok.encode("Hello world");
  EXPECT_EQ(e.tokens, (Tokens{"<s>", "Hello", "\xc4\xa0world", "</s>"}));
  EXPECT_EQ(e.ids, (Ids{0, 4 + 256 + 8, 4 + 256 + 4, 2}));
  EXPECT_EQ(e.token_type_ids, (Ids{0, 0, 0, 0}));
  EXPECT_EQ(e.attention_mask, (Ids{1, 1, 1, 1}));
  // "é" is the bytes C3 A9, two symbols without a merge; every byte has a symbol, so nothing is unknown.
  EXPECT_EQ(tok.encode("\u00e9").ids, (Ids{0, byte_id(0xC3), byte_id(0xA9), 2}));
  EXPECT_EQ(tok.encode("\x01").ids, (Ids{0, byte_id(0x01), 2}));
  EXPECT_EQ(tok.encode("").ids, (Ids{0, 2}));
}

TEST(BpeRoberta, EveryOccurrenceOfTheBestPairMergesLeftToRight) {
  // "aaa": the pair (a, a) twice, overlapping; left to right gives "aa" "a".
  EXPECT_EQ(roberta().bpe("aaa"), (Tokens{"aa", "a"}));
  EXPECT_EQ(roberta().bpe("aaaa"), (Tokens{"aa", "aa"}));
  // Rank order, not position: with "b c" before "a b", "abc" is "a" "bc"; the other order gives "ab" "c".
  const auto make = [](const std::vector<std::pair<std::string, std::string>>& merges) {
    Tokens t = {"<s>", "<pad>", "</s>", "<unk>"};
    for (const auto& s : byte_symbols()) t.push_back(s);
    for (const auto& [a, b] : merges) t.push_back(a + b);
    return ByteLevelBpeTokenizer::from_strings(vocab_json(t), merges_txt(merges), BpeOptions{});
  };
  EXPECT_EQ(make({{"b", "c"}, {"a", "b"}}).bpe("abc"), (Tokens{"a", "bc"}));
  EXPECT_EQ(make({{"a", "b"}, {"b", "c"}}).bpe("abc"), (Tokens{"ab", "c"}));
  // A merge that makes a pair of lower rank waits until every occurrence of the current pair is merged (the slow
  // loop's order): "abab" with "ab a" (rank 0) and "a b" (rank 1) is "ab" "ab", not "aba" "b".
  EXPECT_EQ(make({{"ab", "a"}, {"a", "b"}}).bpe("abab"), (Tokens{"ab", "ab"}));
}

TEST(BpeRoberta, PairsTemplateAndTruncation) {
  BpeOptions o;
  const Encoding pair = roberta(o).encode("Hello", std::string_view(" world"));
  EXPECT_EQ(pair.tokens, (Tokens{"<s>", "Hello", "</s>", "</s>", "\xc4\xa0world", "</s>"}));
  EXPECT_EQ(pair.token_type_ids, (Ids{0, 0, 0, 0, 0, 0}));
  o.max_length = 4;
  const Encoding cut = roberta(o).encode("Hello world Hello");
  EXPECT_EQ(cut.tokens, (Tokens{"<s>", "Hello", "\xc4\xa0world", "</s>"}));
  EXPECT_TRUE(cut.truncated);
  EXPECT_FALSE(roberta().encode("Hello").truncated);
  // A pair loses tokens from the longer text, from B on a tie: A = 3 tokens, B = 2, room 6 - 4 = 2.
  o.max_length = 6;
  const Encoding pair_cut = roberta(o).encode("a b c", std::string_view("d e"));
  EXPECT_EQ(pair_cut.tokens, (Tokens{"<s>", "a", "</s>", "</s>", "d", "</s>"}));
  o.max_length = 4;
  EXPECT_TRUE(contains(input_error([&] { roberta(o).encode("a", std::string_view("b")); }), "at least 5"));
}

TEST(BpeRoberta, SpecialTokensInText) {
  const auto tok = roberta();
  // <mask> takes the whitespace before it (lstrip); the other special tokens split anywhere, even inside words.
  EXPECT_EQ(tok.encode("Hello <mask> world").tokens,
            (Tokens{"<s>", "Hello", "<mask>", "\xc4\xa0world", "</s>"}));
  EXPECT_EQ(tok.encode("Hello \t<mask>").tokens, (Tokens{"<s>", "Hello", "<mask>", "</s>"}));
  EXPECT_EQ(tok.encode("a</s>b<s>").tokens, (Tokens{"<s>", "a", "</s>", "b", "<s>", "</s>"}));
  EXPECT_EQ(tok.mask_id(), static_cast<std::int64_t>(roberta_tokens().size()) - 1);
  EXPECT_EQ(tok.pad_id(), 1);
  EXPECT_EQ(tok.unk_id(), 3);
  BpeOptions o;
  o.recognise_special_tokens = false;
  EXPECT_EQ(roberta(o).encode("<s>").tokens, (Tokens{"<s>", "<", "s", ">", "</s>"}));
}

TEST(BpeRoberta, PrefixSpaceAndPadding) {
  BpeOptions o;
  o.add_prefix_space = true;
  // " Hello": no merge joins the space symbol to "H"; without the option "Hello" is one token.
  EXPECT_EQ(roberta(o).encode("Hello").tokens, (Tokens{"<s>", "\xc4\xa0", "Hello", "</s>"}));
  EXPECT_EQ(roberta(o).encode(" world").tokens, (Tokens{"<s>", "\xc4\xa0world", "</s>"}));
  EXPECT_EQ(roberta().encode("Hello").tokens, (Tokens{"<s>", "Hello", "</s>"}));
  o.add_prefix_space = false;
  o.pad_to_max_length = true;
  o.max_length = 5;
  const Encoding e = roberta(o).encode("Hello");
  EXPECT_EQ(e.ids, (Ids{0, 4 + 256 + 8, 2, 1, 1}));
  EXPECT_EQ(e.attention_mask, (Ids{1, 1, 1, 0, 0}));
}

// ---------------------------------------------------------------------------------------------------------------
// CLIP
// ---------------------------------------------------------------------------------------------------------------

TEST(BpeClip, CleaningAndPreTokenisation) {
  const auto tok = clip();
  // MODELS.md G's example: each digit alone, punctuation runs together, the special token spelled in the text.
  EXPECT_EQ(tok.pre_tokenize("a photo of a dog's 2024 <|endoftext|> caf\u00e9!!"),
            (Tokens{"a", "photo", "of", "a", "dog", "'s", "2", "0", "2", "4", "<|endoftext|>", "caf\u00e9", "!!"}));
  // Lowercased first (so "'S" is a contraction), whitespace of every kind collapsed; NFC composes "e" + U+0301.
  EXPECT_EQ(tok.pre_tokenize("  IT'S\u00a0\u2003Cafe\u0301\n"), (Tokens{"it", "'s", "caf\u00e9"}));
  // Python's str.lower() of the whole text applies Final_Sigma.
  EXPECT_EQ(tok.pre_tokenize("\u039f\u0394\u039f\u03a3"), (Tokens{"\u03bf\u03b4\u03bf\u03c2"}));
  // After punctuation the regex's punctuation run takes "<|": the special token is not recognised there.
  EXPECT_EQ(tok.pre_tokenize("!<|endoftext|>"), (Tokens{"!<|", "endoftext", "|>"}));
  // U+001C is not White_Space (kept as a character) but Python's strip() removes it at the ends.
  EXPECT_EQ(tok.pre_tokenize("\x1c" "a\x1c" "b\x1c"), (Tokens{"a", "\x1c", "b"}));
  EXPECT_EQ(tok.pre_tokenize(" \t "), Tokens{});
}

TEST(BpeClip, WordEndsAndIds) {
  const auto tok = clip();
  EXPECT_EQ(tok.bpe("photo"), (Tokens{"photo</w>"}));
  EXPECT_EQ(tok.bpe("a"), (Tokens{"a</w>"}));
  // 'a' is byte 97, symbol 64 of the printable list, so "a</w>" is 256 + 64; "!" is symbol 0 and "!</w>" 256.
  EXPECT_EQ(tok.encode("A Photo of a CAT!!").ids, (Ids{519, 320, 515, 516, 320, 518, 0, 256, 520}));
  EXPECT_EQ(tok.encode("2024").ids, (Ids{519, 256 + 17, 256 + 15, 256 + 17, 256 + 19, 520}));
  EXPECT_EQ(tok.encode("a <|endoftext|> a").ids, (Ids{519, 320, 520, 320, 520}));
  EXPECT_EQ(tok.encode("").ids, (Ids{519, 520}));
  EXPECT_EQ(tok.bos_id(), 519);
  EXPECT_EQ(tok.eos_id(), 520);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_TRUE(contains(input_error([&] { tok.mask_id(); }), "no mask token"));
  EXPECT_TRUE(contains(input_error([&] { tok.encode("a", std::string_view("b")); }), "one text"));
}

TEST(BpeClip, ContextTruncationAndPadding) {
  BpeOptions o;
  o.max_length = 4;
  const Encoding cut = clip(o).encode("a photo of a cat");
  // open_clip: the first 77 (here 4) ids, the last set to <|endoftext|>.
  EXPECT_EQ(cut.ids, (Ids{519, 320, 515, 520}));
  EXPECT_TRUE(cut.truncated);
  o.max_length = 6;
  o.pad_to_max_length = true;
  const Encoding padded = clip(o).encode("a");
  EXPECT_EQ(padded.ids, (Ids{519, 320, 520, 0, 0, 0}));
  EXPECT_EQ(padded.attention_mask, (Ids{1, 1, 1, 0, 0, 0}));
}

// ---------------------------------------------------------------------------------------------------------------
// Bad files
// ---------------------------------------------------------------------------------------------------------------

TEST(BpeFiles, BadVocabulariesAndMerges) {
  const std::string merges = merges_txt(kRobertaMerges);
  const auto load = [&](const std::string& vocab, const std::string& m) {
    return input_error([&] { ByteLevelBpeTokenizer::from_strings(vocab, m, BpeOptions{}); });
  };
  EXPECT_TRUE(contains(load("[1, 2]", merges), "non-empty JSON object"));
  EXPECT_TRUE(contains(load("{\"a\": 0, \"b\": 2}", merges), "outside 0..1"));
  EXPECT_TRUE(contains(load("{\"a\": 0, \"b\": \"x\"}", merges), "must be an integer"));
  Tokens no_byte = roberta_tokens();
  no_byte.erase(no_byte.begin() + 4);  // the symbol of byte '!'
  EXPECT_TRUE(contains(load(vocab_json(no_byte), merges), "has no '!' token"));
  Tokens no_bos = roberta_tokens();
  no_bos[0] = "<bos>";
  EXPECT_TRUE(contains(load(vocab_json(no_bos), merges), "has no '<s>' token"));
  const std::string vocab = vocab_json(roberta_tokens());
  EXPECT_TRUE(contains(load(vocab, "#version: 0.2\nH e\nl l l\n"), "merges.txt line 3"));
  EXPECT_TRUE(contains(load(vocab, "#version: 0.2\nH e\nl l\nH e\n"), "repeats line 2"));
  EXPECT_TRUE(contains(load(vocab, std::string("H \xff\n")), "not valid UTF-8"));
  // Without <unk>, a merge whose result is not in the vocabulary could not be encoded.
  Tokens no_unk = roberta_tokens();
  no_unk[3] = "<other>";
  EXPECT_TRUE(contains(load(vocab_json(no_unk), "x y\n"), "makes 'xy'"));
  // CRLF, no header and no final newline read the same as the canonical file.
  const auto crlf = ByteLevelBpeTokenizer::from_strings(vocab, "H e\r\nl l\r\nHe ll\r\nHell o", BpeOptions{});
  EXPECT_EQ(crlf.merge_count(), 4u);
  EXPECT_EQ(crlf.bpe("Hello"), (Tokens{"Hello"}));
  EXPECT_TRUE(contains(input_error([&] { roberta().encode("a\xc3"); }), "not valid UTF-8 (byte offset 1)"));
  BpeOptions o;
  o.max_length = 1;
  EXPECT_TRUE(contains(input_error([&] { roberta(o); }), "too small"));
  EXPECT_TRUE(contains(input_error([&] { ByteLevelBpeTokenizer::load("/nonexistent/vocab.json", "m", o); }),
                       "no such file"));
}

}  // namespace
}  // namespace attnlens
