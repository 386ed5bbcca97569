#include "io/wordpiece.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <utility>

#include "core/array.hpp"

namespace attnlens {

namespace {

using CodePoints = std::u32string;

/// Decodes UTF-8 into code points; throws InputError "<what> is not valid UTF-8 (byte offset N)".
CodePoints decode(std::string_view text, const char* what) {
  if (const auto bad = first_invalid_utf8(text)) {
    throw InputError(std::string(what) + " is not valid UTF-8 (byte offset " + std::to_string(*bad) + ")");
  }
  CodePoints out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const std::size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    char32_t cp = length == 1 ? lead : length == 2 ? (lead & 0x1F) : length == 3 ? (lead & 0x0F) : (lead & 0x07);
    for (std::size_t k = 1; k < length; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    out.push_back(cp);
    i += length;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string encode(const CodePoints& cps) {
  std::string out;
  out.reserve(cps.size());
  for (const char32_t cp : cps) append_utf8(out, cp);
  return out;
}

/// Canonical normalisation with utf8proc: `compose` = NFC, otherwise NFD. The input is well-formed (it was decoded).
CodePoints normalize(const CodePoints& cps, bool compose) {
  if (cps.empty()) return cps;
  const std::string utf8 = encode(cps);
  utf8proc_uint8_t* mapped = nullptr;
  const auto options = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | (compose ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE));
  const utf8proc_ssize_t length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                                               static_cast<utf8proc_ssize_t>(utf8.size()), &mapped, options);
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  if (length < 0) {
    // Only allocation failure is possible on well-formed input without UTF8PROC_REJECTNA.
    throw std::runtime_error(std::string("Unicode normalisation failed: ") + utf8proc_errmsg(length));
  }
  return decode(std::string_view(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(length)),
                "normalised text");
}

utf8proc_category_t category(char32_t cp) { return utf8proc_category(static_cast<utf8proc_int32_t>(cp)); }

/// Hugging Face's _is_control: category C* (Cc, Cf, Cs, Co and unassigned Cn), but \t \n \r count as whitespace.
bool is_control(char32_t cp) {
  if (cp == U'\t' || cp == U'\n' || cp == U'\r') return false;
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
      return true;
    default:
      return false;
  }
}

/// Hugging Face's _is_whitespace: space, \t, \n, \r and category Zs (U+00A0, U+3000, ...).
bool is_whitespace(char32_t cp) {
  return cp == U' ' || cp == U'\t' || cp == U'\n' || cp == U'\r' || category(cp) == UTF8PROC_CATEGORY_ZS;
}

/// Where Hugging Face's whitespace_tokenize (Python's str.split()) splits once the text is cleaned: the space every
/// whitespace character became, and U+2028/U+2029 (categories Zl/Zp), which cleaning keeps but str.split() treats
/// as whitespace.
bool is_word_separator(char32_t cp) {
  if (cp == U' ') return true;
  const auto c = category(cp);
  return c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

/// The CJK ideograph blocks BERT puts spaces around (spec 9). Hiragana, katakana and Hangul are not among them.
bool is_cjk_ideograph(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/// All ASCII non-alphanumerics count ($ + < = > ^ ` | ~ are symbols, not punctuation, in Unicode), then P*.
bool is_punctuation(char32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) {
    return true;
  }
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

// Unicode's Cased and Case_Ignorable properties (DerivedCoreProperties), which Python's Final_Sigma rule uses. utf8proc
// has no table for them, so they are derived from categories and case mappings: Cased misses a few letters without
// case mappings that Unicode calls Other_Lowercase (ª º ʰ...), all of which are also case-ignorable (Lm) or Lo.
bool is_cased(char32_t cp) {
  const auto c = category(cp);
  if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT) return true;
  const auto i = static_cast<utf8proc_int32_t>(cp);
  return utf8proc_tolower(i) != i || utf8proc_toupper(i) != i;
}

bool is_case_ignorable(char32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      break;
  }
  // Word_Break = MidLetter, MidNumLet or Single_Quote.
  switch (cp) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4: case 0x2018: case 0x2019:
    case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
      return true;
    default:
      return false;
  }
}

/// Python's str.lower() of one word: utf8proc's simple lowercase mapping per code point plus the two places where
/// Python differs from it: U+0130 'İ' becomes "i" + U+0307 (SpecialCasing; accent stripping then leaves "i" either
/// way), and capital sigma becomes final 'ς' at the end of a word (Final_Sigma, e.g. "ΟΔΟΣ" -> "οδος"). Known
/// remaining difference: Hugging Face first lowercases the whole text before cleaning it, so a control character
/// between letters (dropped by cleaning) can change the Final_Sigma context there but not here.
CodePoints lowercase(const CodePoints& word) {
  CodePoints out;
  out.reserve(word.size());
  for (std::size_t i = 0; i < word.size(); ++i) {
    const char32_t cp = word[i];
    if (cp == 0x130) {
      out += U'i';
      out += char32_t{0x307};
    } else if (cp == 0x3A3) {
      // Final when a cased letter precedes and none follows, skipping case-ignorable characters both ways.
      std::size_t before = i;
      while (before > 0 && is_case_ignorable(word[before - 1])) --before;
      bool final_form = before > 0 && is_cased(word[before - 1]);
      std::size_t after = i + 1;
      while (after < word.size() && is_case_ignorable(word[after])) ++after;
      if (after < word.size() && is_cased(word[after])) final_form = false;
      out += final_form ? char32_t{0x3C2} : char32_t{0x3C3};
    } else {
      out += static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
    }
  }
  return out;
}

/// NFD, then drop nonspacing marks (Mn). Like Hugging Face, the result is not recomposed: Hangul syllables stay
/// decomposed into conjoining jamo.
CodePoints strip_accents(const CodePoints& word) {
  CodePoints out;
  for (const char32_t cp : normalize(word, /*compose=*/false)) {
    if (category(cp) != UTF8PROC_CATEGORY_MN) out += cp;
  }
  return out;
}

/// BasicTokenizer on decoded text (spec 9), in Hugging Face's order.
std::vector<std::string> basic_tokens(const CodePoints& text, const TokenizerOptions& options) {
  CodePoints cleaned;
  cleaned.reserve(text.size());
  for (const char32_t cp : text) {
    if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
    if (is_whitespace(cp)) {
      cleaned += U' ';
    } else if (is_cjk_ideograph(cp)) {
      cleaned += U' ';
      cleaned += cp;
      cleaned += U' ';
    } else {
      cleaned += cp;
    }
  }
  if (options.nfc) cleaned = normalize(cleaned, /*compose=*/true);

  std::vector<std::string> tokens;
  std::size_t start = 0;
  while (start < cleaned.size()) {
    if (is_word_separator(cleaned[start])) {
      ++start;
      continue;
    }
    std::size_t end = start;
    while (end < cleaned.size() && !is_word_separator(cleaned[end])) ++end;
    CodePoints word = cleaned.substr(start, end - start);
    start = end;
    if (options.lowercase) word = strip_accents(lowercase(word));
    // Each punctuation mark is a token of its own; the runs between them are tokens.
    std::string run;
    for (const char32_t cp : word) {
      if (is_punctuation(cp)) {
        if (!run.empty()) tokens.push_back(std::move(run));
        run.clear();
        tokens.emplace_back();
        append_utf8(tokens.back(), cp);
      } else {
        append_utf8(run, cp);
      }
    }
    if (!run.empty()) tokens.push_back(std::move(run));
  }
  return tokens;
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(Vocabulary vocab, TokenizerOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  if (options_.max_length < 2) {
    throw InputError("max_length " + std::to_string(options_.max_length) +
                     " is too small: [CLS] and [SEP] alone need 2 tokens");
  }
  if (options_.max_chars_per_word < 1) {
    throw InputError("max_chars_per_word " + std::to_string(options_.max_chars_per_word) + " must be at least 1");
  }
  cls_id_ = vocab_.require(options_.cls);
  sep_id_ = vocab_.require(options_.sep);
  unk_id_ = vocab_.require(options_.unk);
  // [PAD] and [MASK] are only needed by callers that pad batches or blank out tokens; a vocabulary without them still
  // encodes text, so they are checked when asked for (pad_id(), mask_id()).
  pad_id_ = vocab_.find(options_.pad);
  mask_id_ = vocab_.find(options_.mask);
  if (options_.recognise_special_tokens) {
    for (const std::string* s : {&options_.unk, &options_.cls, &options_.sep, &options_.pad, &options_.mask}) {
      // A special token the vocabulary lacks would become an id-less token, so it is left as ordinary text.
      if (!s->empty() && vocab_.find(*s) &&
          std::find(special_tokens_.begin(), special_tokens_.end(), *s) == special_tokens_.end()) {
        special_tokens_.push_back(*s);
      }
    }
    std::stable_sort(special_tokens_.begin(), special_tokens_.end(),
                     [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  }
}

std::int64_t WordPieceTokenizer::pad_id() const {
  if (!pad_id_) return vocab_.require(options_.pad);  // throws with the vocabulary's name
  return *pad_id_;
}

std::int64_t WordPieceTokenizer::mask_id() const {
  if (!mask_id_) return vocab_.require(options_.mask);
  return *mask_id_;
}

std::vector<std::string> WordPieceTokenizer::basic_tokenize(std::string_view text) const {
  return basic_tokens(decode(text, "text"), options_);
}

std::vector<std::string> WordPieceTokenizer::wordpiece(std::string_view word) const {
  decode(word, "word");  // validates; pieces below are cut at code point boundaries
  std::vector<std::size_t> boundaries;  // byte offset of each code point, then word.size()
  for (std::size_t i = 0; i < word.size(); ++i) {
    if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) boundaries.push_back(i);
  }
  const std::size_t chars = boundaries.size();
  boundaries.push_back(word.size());
  if (chars == 0) return {};
  if (chars > static_cast<std::size_t>(options_.max_chars_per_word)) return {options_.unk};

  std::vector<std::string> pieces;
  std::size_t start = 0;  // in code points
  while (start < chars) {
    std::size_t end = chars;
    std::string match;
    for (; end > start; --end) {
      std::string candidate = start > 0 ? "##" : "";
      candidate.append(word.substr(boundaries[start], boundaries[end] - boundaries[start]));
      if (vocab_.find(candidate)) {
        match = std::move(candidate);
        break;
      }
    }
    if (end == start) return {options_.unk};  // no piece fits here: the whole word is unknown
    pieces.push_back(std::move(match));
    start = end;
  }
  return pieces;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  const CodePoints cps = decode(text, "text");
  std::vector<std::string> tokens;
  const auto add_words = [&](const CodePoints& chunk) {
    for (const std::string& word : basic_tokens(chunk, options_)) {
      for (std::string& piece : wordpiece(word)) tokens.push_back(std::move(piece));
    }
  };
  std::vector<CodePoints> specials;
  for (const std::string& s : special_tokens_) specials.push_back(decode(s, "special token"));

  // Leftmost match wins, and the longest special token at that position (specials are sorted longest first).
  std::size_t chunk_start = 0;
  for (std::size_t i = 0; i < cps.size();) {
    std::size_t matched = specials.size();
    for (std::size_t s = 0; s < specials.size(); ++s) {
      if (cps.compare(i, specials[s].size(), specials[s]) == 0) {
        matched = s;
        break;
      }
    }
    if (matched == specials.size()) {
      ++i;
      continue;
    }
    add_words(cps.substr(chunk_start, i - chunk_start));
    tokens.push_back(special_tokens_[matched]);
    i += specials[matched].size();
    chunk_start = i;
  }
  add_words(cps.substr(chunk_start));
  return tokens;
}

Encoding WordPieceTokenizer::encode(std::string_view text_a, std::optional<std::string_view> text_b) const {
  std::vector<std::string> a = tokenize(text_a);
  std::vector<std::string> b;
  if (text_b) {
    if (options_.max_length < 3) {
      throw InputError("max_length " + std::to_string(options_.max_length) +
                       " is too small for a pair: [CLS] A [SEP] B [SEP] needs at least 3 tokens");
    }
    try {
      b = tokenize(*text_b);
    } catch (const InputError& e) {
      throw InputError(std::string("second ") + e.what());
    }
  }

  Encoding enc;
  const std::size_t room = static_cast<std::size_t>(options_.max_length) - (text_b ? 3 : 2);
  while (a.size() + b.size() > room) {
    // One text: drop from the end of A. Pair: drop from the longer, from B on a tie (Hugging Face's
    // longest_first, whose loop pops A only while A is strictly longer).
    if (!text_b || a.size() > b.size()) {
      a.pop_back();
    } else {
      b.pop_back();
    }
    enc.truncated = true;
  }

  const auto add = [&](std::string token, std::int64_t type) {
    const std::optional<std::int64_t> id = vocab_.find(token);
    enc.ids.push_back(id ? *id : unk_id_);  // every token of tokenize() is in the vocabulary; unk is a safe default
    enc.tokens.push_back(std::move(token));
    enc.token_type_ids.push_back(type);
    enc.attention_mask.push_back(1);
  };
  add(options_.cls, 0);
  for (std::string& t : a) add(std::move(t), 0);
  add(options_.sep, 0);
  if (text_b) {
    for (std::string& t : b) add(std::move(t), 1);
    add(options_.sep, 1);
  }
  return enc;
}

}  // namespace attnlens
