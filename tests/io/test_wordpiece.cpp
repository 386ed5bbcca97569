// BERT tokenisation (spec 9): Vocabulary files, BasicTokenizer, WordPiece and the [CLS]/[SEP] layout. Every expected
// output below was worked out by hand from the rules (Hugging Face's BertTokenizer), not recorded from this code.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/array.hpp"
#include "io/vocab.hpp"
#include "io/wordpiece.hpp"

namespace attnlens {
namespace {

namespace fs = std::filesystem;
using Tokens = std::vector<std::string>;
using Ids = std::vector<std::int64_t>;

// A tiny hand-made vocabulary; the comments give the ids the expectations use.
Tokens test_tokens() {
  return {
      "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",         // 0-4
      "the", "cat", "sat", "on", "mat",                     // 5-9
      "hello", "naive", "cafe", "don", "'",                 // 10-14
      "t", "!", ".", "u", "s",                              // 15-19
      "a", "\u6211", "\u7231", "nlp", "un",                 // 20-24: 我 爱
      "##aff", "##able", "ab", "##c", "##bc",               // 25-29
      "##a", "H\u00e9llo", "World", "\u00e9", "##\u00e9",  // 30-34: Héllo (NFC), é
      "[", "]", "mask",                                     // 35-37
  };
}

WordPieceTokenizer make_tokenizer(TokenizerOptions options = {}) {
  return WordPieceTokenizer(Vocabulary::from_tokens(test_tokens()), options);
}

TokenizerOptions cased() {
  TokenizerOptions o;
  o.lowercase = false;
  return o;
}

/// The message of the InputError `f` throws ("" and a test failure when it throws none).
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

// ---------------------------------------------------------------------------------------------------------------
// BasicTokenizer
// ---------------------------------------------------------------------------------------------------------------

struct BasicCase {
  const char* name;
  std::string text;
  Tokens expected;
};

TEST(WordPieceBasic, UncasedTable) {
  const std::vector<BasicCase> cases = {
      {"accent", "H\u00e9llo", {"hello"}},
      {"decomposed accent is composed, then stripped", "He\u0301llo", {"hello"}},
      {"accents in two words", "na\u00efve caf\u00e9", {"naive", "cafe"}},
      {"apostrophe and bang", "don't!", {"don", "'", "t", "!"}},
      {"dots", "U.S.A.", {"u", ".", "s", ".", "a", "."}},
      {"ASCII symbols count as punctuation", "$5+3=8", {"$", "5", "+", "3", "=", "8"}},
      {"Unicode Pi/Pf quotes", "\u00abHi\u00bb", {"\u00ab", "hi", "\u00bb"}},
      {"em dash (Pd)", "a\u2014b", {"a", "\u2014", "b"}},
      {"currency sign (Sc) is not punctuation", "a\u20acb", {"a\u20acb"}},
      {"CJK ideographs get spaces", "\u6211\u7231NLP", {"\u6211", "\u7231", "nlp"}},
      {"CJK extension B", "\U00020000x", {"\U00020000", "x"}},
      {"CJK compatibility ideograph, spaced then NFC", "a\uf900", {"a", "\u8c48"}},
      {"hiragana is not spaced", "\u3053\u3093\u306b\u3061\u306f", {"\u3053\u3093\u306b\u3061\u306f"}},
      {"BEL dropped (Cc), no split", "a\x07" "b", {"ab"}},
      {"vertical tab dropped (Cc), no split", "a\x0b" "b", {"ab"}},
      {"NUL dropped", std::string("a\0b", 3), {"ab"}},
      {"U+FFFD dropped", "a\ufffd" "b", {"ab"}},
      {"zero-width space dropped (Cf)", "a\u200b" "b", {"ab"}},
      {"tab, newline, CR are spaces", "a\tb\nc\rd", {"a", "b", "c", "d"}},
      {"NBSP and ideographic space (Zs) are spaces", "a\u00a0" "b\u3000" "c", {"a", "b", "c"}},
      {"line separator (Zl) splits", "a\u2028" "b", {"a", "b"}},
      // Hugging Face lowercases one character at a time: no Final_Sigma (str.lower() of the word would give ς).
      {"capital sigma at a word's end lowercases to medial sigma", "\u039f\u0394\u039f\u03a3",
       {"\u03bf\u03b4\u03bf\u03c3"}},
      {"initial sigma", "\u03a3\u0391", {"\u03c3\u03b1"}},
      {"dotted capital I", "\u0130stanbul", {"istanbul"}},
      {"Hangul syllable stays decomposed (NFD)", "\ud55c", {"\u1112\u1161\u11ab"}},
      {"lone combining mark vanishes", "a \u0301 b", {"a", "b"}},
      {"empty", "", {}},
      {"whitespace only", " \t\n\u3000 ", {}},
  };
  const WordPieceTokenizer tok = make_tokenizer();
  for (const BasicCase& c : cases) {
    EXPECT_EQ(tok.basic_tokenize(c.text), c.expected) << c.name;
  }
}

TEST(WordPieceBasic, CasedKeepsCaseAndAccents) {
  const WordPieceTokenizer tok = make_tokenizer(cased());
  EXPECT_EQ(tok.basic_tokenize("H\u00e9llo World"), (Tokens{"H\u00e9llo", "World"}));
  EXPECT_EQ(tok.basic_tokenize("He\u0301llo"), (Tokens{"H\u00e9llo"}));  // NFC still applies
  EXPECT_EQ(tok.basic_tokenize("Don't"), (Tokens{"Don", "'", "t"}));
  EXPECT_EQ(tok.basic_tokenize("\u0130"), (Tokens{"\u0130"}));
}

TEST(WordPieceBasic, WithoutNfcDecomposedTextStaysDecomposed) {
  TokenizerOptions o = cased();
  o.nfc = false;
  EXPECT_EQ(make_tokenizer(o).basic_tokenize("He\u0301llo"), (Tokens{"He\u0301llo"}));
}

TEST(WordPieceBasic, InvalidUtf8IsAnInputErrorWithTheOffset) {
  const WordPieceTokenizer tok = make_tokenizer();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\x80", "byte offset 0"},                    // lone continuation byte
      {"ab\xc3", "byte offset 2"},                  // truncated 2-byte sequence at the end
      {"\xe2\x82 x", "byte offset 0"},              // truncated 3-byte sequence before a space
      {"\xc0\xaf", "byte offset 0"},                // overlong '/'
      {"a\xe0\x80\xaf", "byte offset 1"},           // overlong 3-byte '/'
      {"\xed\xa0\x80", "byte offset 0"},            // UTF-16 surrogate D800
      {"\xf4\x90\x80\x80", "byte offset 0"},        // above U+10FFFF
      {"ok\xff", "byte offset 2"},                  // never valid
  };
  for (const auto& [bytes, where] : cases) {
    const std::string text = bytes;  // a lambda may not capture a structured binding before C++20 (clang)
    const std::string message = input_error([&] { tok.basic_tokenize(text); });
    EXPECT_NE(message.find("text is not valid UTF-8"), std::string::npos) << message;
    EXPECT_NE(message.find(where), std::string::npos) << message;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// WordPiece
// ---------------------------------------------------------------------------------------------------------------

TEST(WordPiecePieces, GreedyLongestMatchFirst) {
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.wordpiece("unaffable"), (Tokens{"un", "##aff", "##able"}));
  // "ab" is taken before "a" + "##bc" could be considered.
  EXPECT_EQ(tok.wordpiece("abc"), (Tokens{"ab", "##c"}));
  EXPECT_EQ(tok.wordpiece("the"), (Tokens{"the"}));
  EXPECT_EQ(tok.wordpiece(""), Tokens{});
}

TEST(WordPiecePieces, AnyUnmatchedPositionMakesTheWholeWordUnknown) {
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.wordpiece("unaffablez"), (Tokens{"[UNK]"}));
  EXPECT_EQ(tok.wordpiece("dog"), (Tokens{"[UNK]"}));
  EXPECT_EQ(tok.wordpiece("bc"), (Tokens{"[UNK]"}));  // "##bc" exists, but not as a word start
}

TEST(WordPiecePieces, OverLongWordsAreUnknown) {
  const WordPieceTokenizer tok = make_tokenizer();
  Tokens hundred{"a"};
  hundred.insert(hundred.end(), 99, "##a");
  EXPECT_EQ(tok.wordpiece(std::string(100, 'a')), hundred);
  EXPECT_EQ(tok.wordpiece(std::string(101, 'a')), (Tokens{"[UNK]"}));
}

TEST(WordPiecePieces, WordLengthCountsCodePointsNotBytes) {
  TokenizerOptions o = cased();
  o.max_chars_per_word = 3;
  const WordPieceTokenizer tok = make_tokenizer(o);
  EXPECT_EQ(tok.wordpiece("\u00e9\u00e9\u00e9"), (Tokens{"\u00e9", "##\u00e9", "##\u00e9"}));  // 6 bytes
  EXPECT_EQ(tok.wordpiece("\u00e9\u00e9\u00e9\u00e9"), (Tokens{"[UNK]"}));
}

// ---------------------------------------------------------------------------------------------------------------
// encode
// ---------------------------------------------------------------------------------------------------------------

TEST(WordPieceEncode, SingleText) {
  const Encoding e = make_tokenizer().encode("The cat sat.");
  EXPECT_EQ(e.tokens, (Tokens{"[CLS]", "the", "cat", "sat", ".", "[SEP]"}));
  EXPECT_EQ(e.ids, (Ids{2, 5, 6, 7, 17, 3}));
  EXPECT_EQ(e.token_type_ids, (Ids{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(e.attention_mask, (Ids{1, 1, 1, 1, 1, 1}));
  EXPECT_FALSE(e.truncated);
}

TEST(WordPieceEncode, PairHasTokenTypesOneAfterTheFirstSep) {
  const Encoding e = make_tokenizer().encode("the cat", std::string_view("sat on the mat"));
  EXPECT_EQ(e.tokens, (Tokens{"[CLS]", "the", "cat", "[SEP]", "sat", "on", "the", "mat", "[SEP]"}));
  EXPECT_EQ(e.ids, (Ids{2, 5, 6, 3, 7, 8, 5, 9, 3}));
  EXPECT_EQ(e.token_type_ids, (Ids{0, 0, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(e.attention_mask, Ids(9, 1));
}

TEST(WordPieceEncode, EmptyAndBlankTextsGiveOnlySpecialTokens) {
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.encode("").ids, (Ids{2, 3}));
  EXPECT_EQ(tok.encode(" \t\n").ids, (Ids{2, 3}));
  const Encoding pair = tok.encode("", std::string_view(""));
  EXPECT_EQ(pair.ids, (Ids{2, 3, 3}));
  EXPECT_EQ(pair.token_type_ids, (Ids{0, 0, 1}));
}

TEST(WordPieceEncode, UnknownWordsAndPieces) {
  const Encoding e = make_tokenizer().encode("the dog unaffable");
  EXPECT_EQ(e.tokens, (Tokens{"[CLS]", "the", "[UNK]", "un", "##aff", "##able", "[SEP]"}));
  EXPECT_EQ(e.ids, (Ids{2, 5, 1, 24, 25, 26, 3}));
}

TEST(WordPieceEncode, AccentsAndCjkThroughToIds) {
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.encode("Na\u00efve CAF\u00c9!").ids, (Ids{2, 11, 12, 16, 3}));
  EXPECT_EQ(tok.encode("\u6211\u7231NLP").ids, (Ids{2, 21, 22, 23, 3}));
}

TEST(WordPieceEncode, CasedVocabularyMatchesOnlyInCasedMode) {
  EXPECT_EQ(make_tokenizer(cased()).encode("H\u00e9llo World").ids, (Ids{2, 31, 32, 3}));
  EXPECT_EQ(make_tokenizer().encode("H\u00e9llo World").ids, (Ids{2, 10, 1, 3}));  // "world" is not in the vocab
}

TEST(WordPieceEncode, SpecialTokensInTextAreRecognised) {
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.encode("the [MASK] sat.").ids, (Ids{2, 5, 4, 7, 17, 3}));
  EXPECT_EQ(tok.encode("the[MASK]cat").ids, (Ids{2, 5, 4, 6, 3}));
  // Matching is case-sensitive, so "[mask]" is ordinary text: "[", "mask", "]".
  EXPECT_EQ(tok.encode("[mask]").ids, (Ids{2, 35, 37, 36, 3}));
  TokenizerOptions o;
  o.recognise_special_tokens = false;
  EXPECT_EQ(make_tokenizer(o).encode("[MASK]").ids, (Ids{2, 35, 37, 36, 3}));
}

TEST(WordPieceEncode, SpecialTokenSpelledOnlyAfterCleaningIsOneTokenInCasedMode) {
  // Hugging Face: the added-tokens split sees "[MA" U+200B "SK]" (no match); cleaning then drops the zero-width
  // space (Cf) or NUL, and BasicTokenizer's never_split keeps the word "[MASK]" whole. Uncased, the text was
  // lowercased first ("[mask]"), which is not a special token, so it is split on punctuation.
  const WordPieceTokenizer cased_tok = make_tokenizer(cased());
  EXPECT_EQ(cased_tok.encode("the [MA\u200bSK] sat").ids, (Ids{2, 5, 4, 7, 3}));
  EXPECT_EQ(cased_tok.encode(std::string("[MASK\0]", 7)).ids, (Ids{2, 4, 3}));
  EXPECT_EQ(make_tokenizer().encode("[MA\u200bSK]").ids, (Ids{2, 35, 37, 36, 3}));
  // Only a whole word: glued to other letters it is split as any text.
  EXPECT_EQ(cased_tok.encode("a[MA\u200bSK]").tokens, (Tokens{"[CLS]", "a", "[", "[UNK]", "]", "[SEP]"}));
  // Without special-token recognition (Hugging Face's split_special_tokens) there is no never_split either.
  TokenizerOptions o = cased();
  o.recognise_special_tokens = false;
  EXPECT_EQ(make_tokenizer(o).encode("[MA\u200bSK]").tokens, (Tokens{"[CLS]", "[", "[UNK]", "]", "[SEP]"}));
}

TEST(WordPieceEncode, SingleTextIsTruncatedFromTheEnd) {
  TokenizerOptions o;
  o.max_length = 4;
  const Encoding e = make_tokenizer(o).encode("the cat sat on");
  EXPECT_EQ(e.tokens, (Tokens{"[CLS]", "the", "cat", "[SEP]"}));
  EXPECT_TRUE(e.truncated);
  // Truncation counts WordPiece tokens, so it can cut a word.
  EXPECT_EQ(make_tokenizer(o).encode("unaffable").tokens, (Tokens{"[CLS]", "un", "##aff", "[SEP]"}));
  o.max_length = 2;
  const Encoding none = make_tokenizer(o).encode("the cat");
  EXPECT_EQ(none.ids, (Ids{2, 3}));
  EXPECT_TRUE(none.truncated);
}

TEST(WordPieceEncode, ExactFitIsNotTruncated) {
  TokenizerOptions o;
  o.max_length = 6;
  const Encoding e = make_tokenizer(o).encode("the cat sat on");
  EXPECT_EQ(e.ids, (Ids{2, 5, 6, 7, 8, 3}));
  EXPECT_FALSE(e.truncated);
}

TEST(WordPieceEncode, PairTruncationPopsTheLongerSequence) {
  TokenizerOptions o;
  o.max_length = 8;  // 6 + 2 + 3 = 11: three tokens go, all from A
  Encoding e = make_tokenizer(o).encode("the cat sat on the mat", std::string_view("the cat"));
  EXPECT_EQ(e.tokens, (Tokens{"[CLS]", "the", "cat", "sat", "[SEP]", "the", "cat", "[SEP]"}));
  EXPECT_EQ(e.token_type_ids, (Ids{0, 0, 0, 0, 0, 1, 1, 1}));
  EXPECT_TRUE(e.truncated);

  o.max_length = 6;  // 1 + 5 + 3 = 9: three tokens go, all from B
  e = make_tokenizer(o).encode("the", std::string_view("cat sat on the mat"));
  EXPECT_EQ(e.tokens, (Tokens{"[CLS]", "the", "[SEP]", "cat", "sat", "[SEP]"}));

  o.max_length = 7;  // 3 + 3 + 3 = 9: tie -> B loses one, then A is longer and loses one
  e = make_tokenizer(o).encode("the cat sat", std::string_view("on the mat"));
  EXPECT_EQ(e.tokens, (Tokens{"[CLS]", "the", "cat", "[SEP]", "on", "the", "[SEP]"}));

  o.max_length = 8;  // tie, one token to go: it comes from B
  e = make_tokenizer(o).encode("the cat sat", std::string_view("on the mat"));
  EXPECT_EQ(e.tokens, (Tokens{"[CLS]", "the", "cat", "sat", "[SEP]", "on", "the", "[SEP]"}));
}

TEST(WordPieceEncode, OptionAndInputErrors) {
  TokenizerOptions o;
  o.max_length = 1;
  EXPECT_NE(input_error([&] { make_tokenizer(o); }).find("max_length 1"), std::string::npos);
  o.max_length = 2;
  const WordPieceTokenizer two = make_tokenizer(o);
  EXPECT_NE(input_error([&] { two.encode("a", std::string_view("b")); }).find("pair"), std::string::npos);
  const WordPieceTokenizer tok = make_tokenizer();
  const std::string message = input_error([&] { tok.encode("fine", std::string_view("ab\xc3")); });
  EXPECT_NE(message.find("second text is not valid UTF-8 (byte offset 2)"), std::string::npos) << message;
}

TEST(WordPieceEncode, RequiredSpecialTokens) {
  for (const std::string missing : {"[CLS]", "[SEP]", "[UNK]"}) {
    Tokens tokens = test_tokens();
    tokens.erase(std::find(tokens.begin(), tokens.end(), missing));
    const std::string message =
        input_error([&] { WordPieceTokenizer(Vocabulary::from_tokens(tokens), TokenizerOptions{}); });
    EXPECT_NE(message.find("has no " + missing + " token"), std::string::npos) << message;
  }
  const WordPieceTokenizer full = make_tokenizer();
  EXPECT_EQ(full.cls_id(), 2);
  EXPECT_EQ(full.sep_id(), 3);
  EXPECT_EQ(full.unk_id(), 1);
  EXPECT_EQ(full.pad_id(), 0);
  EXPECT_EQ(full.mask_id(), 4);
}

TEST(WordPieceEncode, PadAndMaskAreCheckedWhenAskedFor) {
  Tokens tokens = test_tokens();
  tokens.erase(tokens.begin() + 4);  // [MASK]
  tokens.erase(tokens.begin());      // [PAD]
  const WordPieceTokenizer tok(Vocabulary::from_tokens(tokens), TokenizerOptions{});
  EXPECT_NE(input_error([&] { tok.mask_id(); }).find("has no [MASK] token"), std::string::npos);
  EXPECT_NE(input_error([&] { tok.pad_id(); }).find("has no [PAD] token"), std::string::npos);
  // Without a [MASK] token, "[MASK]" in text is ordinary text; "[" is now id 33, "mask" 35, "]" 34.
  EXPECT_EQ(tok.encode("[MASK]").ids, (Ids{1, 33, 35, 34, 2}));
}

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------------------------

class VocabularyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("attnlens_vocab_" + std::to_string(::getpid()) + "_" + info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& bytes) {
    const std::string path = (dir_ / "vocab.txt").string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  fs::path dir_;
};

TEST_F(VocabularyFile, IdsAreLineNumbers) {
  const Vocabulary v = Vocabulary::load(write("[PAD]\n[UNK]\nthe\n##s\n"));
  EXPECT_EQ(v.size(), 4);  // the final newline starts no token
  EXPECT_EQ(v.find("the"), std::optional<std::int64_t>(2));
  EXPECT_EQ(v.find("##s"), std::optional<std::int64_t>(3));
  EXPECT_EQ(v.find("cat"), std::nullopt);
  EXPECT_EQ(v.token(1), "[UNK]");
  EXPECT_EQ(v.require("[PAD]"), 0);
}

TEST_F(VocabularyFile, CrlfAndMissingFinalNewline) {
  const Vocabulary crlf = Vocabulary::load(write("[PAD]\r\n[UNK]\r\nthe\r\n"));
  EXPECT_EQ(crlf.size(), 3);
  EXPECT_EQ(crlf.find("the"), std::optional<std::int64_t>(2));
  EXPECT_EQ(crlf.find("the\r"), std::nullopt);
  EXPECT_EQ(Vocabulary::load(write("a\nb")).size(), 2);
}

TEST_F(VocabularyFile, EmptyLineInTheMiddleKeepsLaterIds) {
  const Vocabulary v = Vocabulary::load(write("a\n\nb\n"));
  EXPECT_EQ(v.size(), 3);
  EXPECT_EQ(v.find(""), std::optional<std::int64_t>(1));
  EXPECT_EQ(v.find("b"), std::optional<std::int64_t>(2));
}

TEST_F(VocabularyFile, Errors) {
  std::string m = input_error([&] { Vocabulary::load(write("[PAD]\nthe\ncat\nthe\n")); });
  EXPECT_NE(m.find("line 4: duplicate token 'the' (first at line 2)"), std::string::npos) << m;
  m = input_error([&] { Vocabulary::load((dir_ / "absent.txt").string()); });
  EXPECT_NE(m.find("no such file"), std::string::npos) << m;
  m = input_error([&] { Vocabulary::load(dir_.string()); });
  EXPECT_NE(m.find("not a regular file"), std::string::npos) << m;
  m = input_error([&] { Vocabulary::load(write("")); });
  EXPECT_NE(m.find("is empty"), std::string::npos) << m;
  m = input_error([&] { Vocabulary::load(write("a\n\xff\n")); });
  EXPECT_NE(m.find("line 2: token is not valid UTF-8"), std::string::npos) << m;
}

TEST(VocabularyTokens, FromTokensChecksAndLookups) {
  EXPECT_NE(input_error([] { Vocabulary::from_tokens({}); }).find("is empty"), std::string::npos);
  const std::string m = input_error([] { Vocabulary::from_tokens({"a", "b", "a"}); });
  EXPECT_NE(m.find("token 2: duplicate token 'a' (first at token 0)"), std::string::npos) << m;
  const Vocabulary v = Vocabulary::from_tokens({"a", "b"});
  EXPECT_EQ(v.token(0), "a");
  EXPECT_NE(input_error([&] { v.token(2); }).find("out of range"), std::string::npos);
  EXPECT_NE(input_error([&] { v.token(-1); }).find("out of range"), std::string::npos);
  EXPECT_NE(input_error([&] { v.require("[CLS]"); }).find("vocabulary '<tokens>' has no [CLS] token"),
            std::string::npos);
}

TEST(VocabularyTokens, Utf8Validator) {
  EXPECT_EQ(first_invalid_utf8("plain \u00e9\u20ac\U0001f600"), std::nullopt);
  EXPECT_EQ(first_invalid_utf8("\xef\xbf\xbf"), std::nullopt);  // U+FFFF is a noncharacter but well-formed
  EXPECT_EQ(first_invalid_utf8("\xf4\x8f\xbf\xbf"), std::nullopt);  // U+10FFFF, the last code point
  EXPECT_EQ(first_invalid_utf8("ab\xe0\xa0"), std::optional<std::size_t>(2));
  EXPECT_EQ(first_invalid_utf8("\xc1\xbf"), std::optional<std::size_t>(0));  // overlong
}

}  // namespace
}  // namespace attnlens
