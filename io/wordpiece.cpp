#include "io/wordpiece.hpp"

#include <algorithm>
#include <utility>

#include "core/array.hpp"
#include "io/unicode_text.hpp"

namespace attnlens {

namespace {

using unicode::CodePoints;
using unicode::append_utf8;
using unicode::decode;
using unicode::normalize;

/// Hugging Face's _is_control: category C* (Cc, Cf, Cs, Co and unassigned Cn), but \t \n \r count as whitespace.
bool is_control(char32_t cp) {
  if (cp == U'\t' || cp == U'\n' || cp == U'\r') return false;
  return unicode::is_other(cp);
}

/// Hugging Face's _is_whitespace: space, \t, \n, \r and category Zs (U+00A0, U+3000, ...).
bool is_whitespace(char32_t cp) {
  return cp == U' ' || cp == U'\t' || cp == U'\n' || cp == U'\r' || unicode::is_space_separator(cp);
}

/// Where Hugging Face's whitespace_tokenize (Python's str.split()) splits once the text is cleaned: the space every
/// whitespace character became, and U+2028/U+2029 (categories Zl/Zp), which cleaning keeps but str.split() treats
/// as whitespace.
bool is_word_separator(char32_t cp) {
  return cp == U' ' || unicode::is_line_or_paragraph_separator(cp);
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
  return unicode::is_punctuation_category(cp);
}

/// NFD, then drop nonspacing marks (Mn). Like Hugging Face, the result is not recomposed: Hangul syllables stay
/// decomposed into conjoining jamo.
CodePoints strip_accents(const CodePoints& word) {
  CodePoints out;
  for (const char32_t cp : normalize(word, /*compose=*/false)) {
    if (!unicode::is_nonspacing_mark(cp)) out += cp;
  }
  return out;
}

/// BasicTokenizer on decoded text (spec 9), in Hugging Face's order. A word equal to one of `never_split` once the
/// text is cleaned (and lowercased) stays whole, as Hugging Face's never_split: "[MA" U+200B "SK]" is "[MASK]".
std::vector<std::string> basic_tokens(const CodePoints& text, const TokenizerOptions& options,
                                      const std::vector<std::string>& never_split) {
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
    // Hugging Face's slow tokenizer lowercases the text one character at a time (a regex substitution over
    // single characters, before the special tokens are split out), so capital sigma never takes its final form.
    if (options.lowercase) word = unicode::lower_each_character(word);
    if (!never_split.empty()) {
      std::string whole = unicode::encode(word);
      if (std::find(never_split.begin(), never_split.end(), whole) != never_split.end()) {
        tokens.push_back(std::move(whole));
        continue;
      }
    }
    if (options.lowercase) word = strip_accents(word);
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
  return basic_tokens(decode(text, "text"), options_, {});
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
    for (const std::string& word : basic_tokens(chunk, options_, special_tokens_)) {
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

bool truncate_longest_first(std::vector<std::string>& a, std::vector<std::string>& b, std::size_t room, bool pair) {
  bool dropped = false;
  while (a.size() + b.size() > room) {
    if (!pair || a.size() > b.size()) {
      a.pop_back();
    } else {
      b.pop_back();
    }
    dropped = true;
  }
  return dropped;
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
  enc.truncated = truncate_longest_first(a, b, room, text_b.has_value());

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
