#include "io/bpe.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <queue>
#include <utility>

#include "core/array.hpp"
#include "io/json_input.hpp"
#include "io/unicode_text.hpp"

namespace attnlens {

namespace {

using unicode::CodePoints;
using Flavor = BpeOptions::Flavor;

constexpr const char* kEndOfWord = "</w>";
constexpr const char* kClipStart = "<|startoftext|>";
constexpr const char* kClipEnd = "<|endoftext|>";
/// openai/CLIP and Hugging Face's CLIPTokenizer read only this many merges: 49,152 ids less the 256 byte symbols
/// and the two special tokens.
constexpr std::size_t kClipMerges = 49152 - 256 - 2;

/// GPT-2's bytes_to_unicode (MODELS.md C.8): the 188 printable bytes map to themselves, the other 68 (0-32,
/// 127-160, 173), in increasing order, to U+0100, U+0101, ... Each entry is the symbol's UTF-8.
const std::array<std::string, 256>& byte_symbols() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      unicode::append_utf8(t[static_cast<std::size_t>(b)], printable ? static_cast<char32_t>(b) : next++);
    }
    return t;
  }();
  return table;
}

std::string read_file_bytes(const std::string& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw InputError(std::string("cannot read ") + what + " '" + path + "': " +
                     (std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  std::ifstream in(path, std::ios::binary);
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!in.good() && !in.eof()) throw InputError(std::string("cannot read ") + what + " '" + path + "'");
  return bytes;
}

/// vocab.json: symbol -> id, the ids exactly 0..N-1.
Vocabulary parse_vocab_json(std::string_view text, const std::string& name) {
  const nlohmann::json j = parse_json_input(text, name);
  if (!j.is_object() || j.empty())
    throw InputError(name + ": a vocabulary must be a non-empty JSON object mapping tokens to ids");
  std::vector<std::string> tokens(j.size());
  std::vector<bool> seen(j.size(), false);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& v = it.value();
    if (!v.is_number_integer() && !v.is_number_unsigned())
      throw InputError(name + ": the id of " + json_brief(nlohmann::json(it.key())) + " must be an integer, got " +
                       json_brief(v));
    const auto id = v.is_number_unsigned() ? static_cast<std::int64_t>(std::min<std::uint64_t>(
                                                 v.get<std::uint64_t>(), static_cast<std::uint64_t>(INT64_MAX)))
                                           : v.get<std::int64_t>();
    if (id < 0 || id >= static_cast<std::int64_t>(tokens.size()))
      throw InputError(name + ": id " + std::to_string(id) + " of " + json_brief(nlohmann::json(it.key())) +
                       " is outside 0.." + std::to_string(tokens.size() - 1) + " (the ids must be 0..N-1)");
    const auto k = static_cast<std::size_t>(id);
    if (seen[k])
      throw InputError(name + ": id " + std::to_string(id) + " is given to both " +
                       json_brief(nlohmann::json(tokens[k])) + " and " + json_brief(nlohmann::json(it.key())));
    seen[k] = true;
    tokens[k] = it.key();
  }
  return Vocabulary::from_tokens(std::move(tokens), name);
}

struct Merge {
  std::string first, second;
  std::size_t line = 0;
};

/// merges.txt: an optional "#version" header, then "first second" per line. Python's str.split() (which both
/// Hugging Face tokenizers apply to each line) ends a token at any whitespace; here the separator is one space
/// and a "\r" before the newline is dropped, the only forms real files take.
std::vector<Merge> parse_merges(std::string_view text, const std::string& name) {
  if (const auto bad = first_invalid_utf8(text))
    throw InputError(name + ": not valid UTF-8 (byte offset " + std::to_string(*bad) + ")");
  std::vector<Merge> merges;
  std::size_t start = 0;
  for (std::size_t line = 1; start < text.size(); ++line) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view row = text.substr(start, end - start);
    start = end + 1;
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    if (line == 1 && row.substr(0, 8) == "#version") continue;
    if (row.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::size_t space = row.find(' ');
    if (space == 0 || space == std::string_view::npos || space + 1 == row.size() ||
        row.find_first_of(" \t", space + 1) != std::string_view::npos || row.find('\t') < space)
      throw InputError(name + " line " + std::to_string(line) + ": expected two symbols separated by one space, got '" +
                       one_short_line(std::string(row), 60) + "'");
    merges.push_back({std::string(row.substr(0, space)), std::string(row.substr(space + 1)), line});
  }
  return merges;
}

std::string pair_key(const std::string& first, const std::string& second) { return first + " " + second; }

/// Python's str.isspace(): Unicode White_Space plus the four information separators U+001C-001F, which Python's
/// str.strip() and str.split() also treat as whitespace.
bool is_python_space(char32_t cp) { return unicode::is_white_space(cp) || (cp >= 0x1C && cp <= 0x1F); }

enum class Kind { Letter, Number, Space, Other };

Kind kind_of(char32_t cp) {
  if (unicode::is_white_space(cp)) return Kind::Space;
  if (unicode::is_letter(cp)) return Kind::Letter;
  if (unicode::is_number(cp)) return Kind::Number;
  return Kind::Other;
}

/// Length of the contraction ('s 't 're 've 'm 'll 'd) at `i`, or 0. `fold`: case-insensitively, as CLIP's regex
/// (Python's simple case folding: "S" and U+017F 'ſ' match "s").
std::size_t contraction_at(const CodePoints& t, std::size_t i, bool fold) {
  if (t[i] != U'\'' || i + 1 >= t.size()) return 0;
  const auto is = [&](std::size_t k, char c) {
    if (k >= t.size()) return false;
    const char32_t cp = t[k];
    if (cp == static_cast<char32_t>(c)) return true;
    if (!fold) return false;
    return cp == static_cast<char32_t>(c - 'a' + 'A') || (c == 's' && cp == 0x17F);
  };
  for (const char* c : {"s", "t", "re", "ve", "m", "ll", "d"}) {
    const std::size_t n = std::char_traits<char>::length(c);
    bool all = true;
    for (std::size_t k = 0; k < n; ++k) all = all && is(i + 1 + k, c[k]);
    if (all) return n + 1;
  }
  return 0;
}

/// GPT-2's regex `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, alternatives tried in
/// order at each position, as Python's `regex` module matches it (\s = White_Space).
std::vector<CodePoints> gpt2_pre_tokens(const CodePoints& t) {
  std::vector<CodePoints> out;
  const std::size_t n = t.size();
  std::size_t i = 0;
  while (i < n) {
    std::size_t end = i + contraction_at(t, i, /*fold=*/false);
    if (end == i) {
      // ` ?X+` for X = letter, number, other: one U+0020 may lead the run.
      const std::size_t run_start = t[i] == U' ' && i + 1 < n && kind_of(t[i + 1]) != Kind::Space ? i + 1 : i;
      const Kind k = kind_of(t[run_start]);
      if (k != Kind::Space) {
        end = run_start + 1;
        while (end < n && kind_of(t[end]) == k) ++end;
      } else {
        // A whitespace run: all of it at the end of the text, else all but its last character (which then leads
        // the next word, or stands alone), or the one character of a run of one.
        std::size_t run_end = i + 1;
        while (run_end < n && kind_of(t[run_end]) == Kind::Space) ++run_end;
        end = run_end == n || run_end - i == 1 ? run_end : run_end - 1;
      }
    }
    out.push_back(t.substr(i, end - i));
    i = end;
  }
  return out;
}

bool starts_with_at(const CodePoints& t, std::size_t i, std::string_view ascii, bool fold) {
  if (i + ascii.size() > t.size()) return false;
  for (std::size_t k = 0; k < ascii.size(); ++k) {
    const char32_t cp = t[i + k];
    const char c = ascii[k];
    const bool lower = c >= 'a' && c <= 'z';
    if (cp == static_cast<char32_t>(c)) continue;
    if (fold && lower && (cp == static_cast<char32_t>(c - 'a' + 'A') || (c == 's' && cp == 0x17F))) continue;
    return false;
  }
  return true;
}

/// CLIP's regex `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`,
/// case-insensitive, as re.findall: whitespace matches nothing and is skipped.
std::vector<CodePoints> clip_pre_tokens(const CodePoints& t) {
  std::vector<CodePoints> out;
  const std::size_t n = t.size();
  std::size_t i = 0;
  while (i < n) {
    std::size_t end = i;
    for (std::string_view special : {std::string_view(kClipStart), std::string_view(kClipEnd)})
      if (end == i && starts_with_at(t, i, special, /*fold=*/true)) end = i + special.size();
    if (end == i) end = i + contraction_at(t, i, /*fold=*/true);
    if (end == i) {
      const Kind k = kind_of(t[i]);
      if (k == Kind::Space) {
        ++i;
        continue;
      }
      end = i + 1;
      if (k != Kind::Number)  // digits are one token each
        while (end < n && kind_of(t[end]) == k) ++end;
    }
    out.push_back(t.substr(i, end - i));
    i = end;
  }
  return out;
}

/// CLIP's cleaning without ftfy: NFC (ftfy's last step, and Hugging Face's fast normaliser), whitespace runs (\s of
/// Python's `regex`: White_Space) to one space, Python's str.strip(), then Python's str.lower().
CodePoints clip_clean(const CodePoints& text) {
  CodePoints collapsed;
  for (const char32_t cp : unicode::normalize(text, /*compose=*/true)) {
    if (unicode::is_white_space(cp)) {
      if (collapsed.empty() || collapsed.back() != U' ') collapsed += U' ';
    } else {
      collapsed += cp;
    }
  }
  std::size_t begin = 0, end = collapsed.size();
  while (begin < end && is_python_space(collapsed[begin])) ++begin;
  while (end > begin && is_python_space(collapsed[end - 1])) --end;
  return unicode::python_lower(collapsed.substr(begin, end - begin));
}

/// BPE on symbols: repeatedly the adjacent pair of lowest rank is merged, every non-overlapping occurrence left to
/// right (Hugging Face's slow bpe()), until no adjacent pair has a rank. A heap ordered by (rank, position) gives
/// the same result in O(n log n): all occurrences of one rank are merged before the pairs they create are queued,
/// so a created pair of lower rank waits for the next round, as in the slow loop.
std::vector<std::string> merge_symbols(std::vector<std::string> symbols,
                                       const std::unordered_map<std::string, int>& ranks) {
  const std::size_t n = symbols.size();
  if (n < 2) return symbols;
  std::vector<std::size_t> next(n), prev(n);
  std::vector<bool> alive(n, true);
  std::vector<unsigned> version(n, 0);  // bumped when a symbol grows, so queued pairs with it go stale
  for (std::size_t i = 0; i < n; ++i) {
    next[i] = i + 1;
    prev[i] = i == 0 ? n : i - 1;
  }
  struct Candidate {
    int rank;
    std::size_t left, right;
    unsigned left_version, right_version;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto offer = [&](std::size_t left, std::vector<Candidate>* later) {
    if (left >= n || next[left] >= n) return;
    const auto it = ranks.find(pair_key(symbols[left], symbols[next[left]]));
    if (it == ranks.end()) return;
    const Candidate c{it->second, left, next[left], version[left], version[next[left]]};
    if (later) {
      later->push_back(c);
    } else {
      queue.push(c);
    }
  };
  for (std::size_t i = 0; i + 1 < n; ++i) offer(i, nullptr);
  const auto valid = [&](const Candidate& c) {
    return alive[c.left] && alive[c.right] && next[c.left] == c.right && version[c.left] == c.left_version &&
           version[c.right] == c.right_version;
  };
  std::vector<Candidate> created;
  while (!queue.empty()) {
    const int rank = queue.top().rank;
    created.clear();
    std::vector<std::size_t> merged_at;
    while (!queue.empty() && queue.top().rank == rank) {
      const Candidate c = queue.top();
      queue.pop();
      if (!valid(c)) continue;
      symbols[c.left] += symbols[c.right];
      ++version[c.left];
      alive[c.right] = false;
      next[c.left] = next[c.right];
      if (next[c.left] < n) prev[next[c.left]] = c.left;
      merged_at.push_back(c.left);
    }
    for (const std::size_t at : merged_at) {
      if (!alive[at]) continue;
      if (prev[at] < n) offer(prev[at], &created);
      offer(at, &created);
    }
    for (const Candidate& c : created)
      if (valid(c)) queue.push(c);
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; i = next[i]) out.push_back(std::move(symbols[i]));
  return out;
}

}  // namespace

Vocabulary ByteLevelBpeTokenizer::read_vocab_json(const std::string& path) {
  return parse_vocab_json(read_file_bytes(path, "vocabulary"), path);
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::load(const std::string& vocab_json, const std::string& merges_txt,
                                                  const BpeOptions& options) {
  return from_strings(read_file_bytes(vocab_json, "vocabulary"), read_file_bytes(merges_txt, "merges"), options,
                      vocab_json, merges_txt);
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::from_strings(std::string_view vocab_json, std::string_view merges_txt,
                                                          const BpeOptions& options, const std::string& vocab_name,
                                                          const std::string& merges_name) {
  if (options.max_length < 2)
    throw InputError("max_length " + std::to_string(options.max_length) +
                     " is too small: the two special tokens alone need 2");
  ByteLevelBpeTokenizer t(parse_vocab_json(vocab_json, vocab_name), options);
  const Vocabulary& v = t.vocab_;
  const bool clip = options.flavor == Flavor::Clip;
  const auto need = [&](const std::string& token) {
    const auto id = v.find(token);
    if (!id)
      throw InputError(vocab_name + " has no '" + token + "' token, which " + (clip ? "CLIP" : "RoBERTa") +
                       "'s tokenizer needs (is this the right tokenizer for the model?)");
    return *id;
  };
  for (const std::string& symbol : byte_symbols()) {
    need(symbol);
    if (clip) need(symbol + kEndOfWord);
  }
  if (clip) {
    t.bos_id_ = need(kClipStart);
    t.eos_id_ = need(kClipEnd);
    t.unk_id_ = t.eos_id_;
    t.pad_id_ = 0;
  } else {
    t.bos_id_ = need("<s>");
    t.eos_id_ = need("</s>");
    t.pad_id_ = v.find("<pad>");
    t.unk_id_ = v.find("<unk>");
    t.mask_id_ = v.find("<mask>");
    if (options.recognise_special_tokens) {
      for (const char* s : {"<s>", "</s>", "<unk>", "<pad>", "<mask>"})
        if (v.find(s)) t.special_tokens_.push_back(s);
      std::stable_sort(t.special_tokens_.begin(), t.special_tokens_.end(),
                       [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    }
  }

  std::vector<Merge> merges = parse_merges(merges_txt, merges_name);
  if (clip && merges.size() > kClipMerges) merges.resize(kClipMerges);
  t.ranks_.reserve(merges.size());
  std::unordered_map<std::string, std::size_t> line_of;
  for (std::size_t r = 0; r < merges.size(); ++r) {
    const Merge& m = merges[r];
    const auto [it, inserted] = t.ranks_.emplace(pair_key(m.first, m.second), static_cast<int>(r));
    if (!inserted) {
      std::size_t first_line = 0;
      for (std::size_t k = 0; k < r; ++k)
        if (merges[k].first == m.first && merges[k].second == m.second) first_line = merges[k].line;
      throw InputError(merges_name + " line " + std::to_string(m.line) + ": the merge '" + m.first + " " + m.second +
                       "' repeats line " + std::to_string(first_line));
    }
    // A merged symbol outside the vocabulary becomes the unknown token, as in Hugging Face; without one it could
    // not be encoded at all.
    if (!t.unk_id_ && !v.find(m.first + m.second))
      throw InputError(merges_name + " line " + std::to_string(m.line) + ": the merge '" + m.first + " " + m.second +
                       "' makes '" + m.first + m.second + "', which " + vocab_name +
                       " lacks, and there is no <unk> token to stand for it");
  }
  return t;
}

std::int64_t ByteLevelBpeTokenizer::pad_id() const {
  if (!pad_id_) throw InputError("vocabulary '" + vocab_.name() + "' has no <pad> token");
  return *pad_id_;
}

std::int64_t ByteLevelBpeTokenizer::unk_id() const {
  if (!unk_id_) throw InputError("vocabulary '" + vocab_.name() + "' has no <unk> token");
  return *unk_id_;
}

std::int64_t ByteLevelBpeTokenizer::mask_id() const {
  if (options_.flavor == Flavor::Clip) throw InputError("CLIP's tokenizer has no mask token");
  if (!mask_id_) throw InputError("vocabulary '" + vocab_.name() + "' has no <mask> token");
  return *mask_id_;
}

std::vector<std::string> ByteLevelBpeTokenizer::pre_tokenize(std::string_view text) const {
  const CodePoints cps = unicode::decode(text, "text");
  const std::vector<CodePoints> pieces =
      options_.flavor == Flavor::Clip ? clip_pre_tokens(clip_clean(cps)) : gpt2_pre_tokens(cps);
  std::vector<std::string> out;
  out.reserve(pieces.size());
  for (const CodePoints& p : pieces) out.push_back(unicode::encode(p));
  return out;
}

std::vector<std::string> ByteLevelBpeTokenizer::bpe(std::string_view pre_token) const {
  if (pre_token.empty()) return {};
  const bool clip = options_.flavor == Flavor::Clip;
  // CLIP's two special tokens spelled in the text are what its cache returns for them: themselves.
  if (clip && (pre_token == kClipStart || pre_token == kClipEnd)) return {std::string(pre_token)};
  std::vector<std::string> symbols;
  symbols.reserve(pre_token.size());
  for (const char byte : pre_token) symbols.push_back(byte_symbols()[static_cast<unsigned char>(byte)]);
  if (clip) symbols.back() += kEndOfWord;
  return merge_symbols(std::move(symbols), ranks_);
}

void ByteLevelBpeTokenizer::tokenize_chunk(std::string_view chunk, std::vector<std::string>& out) const {
  for (const std::string& piece : pre_tokenize(chunk))
    for (std::string& symbol : bpe(piece)) out.push_back(std::move(symbol));
}

std::vector<std::string> ByteLevelBpeTokenizer::tokenize(std::string_view text) const {
  const CodePoints cps = unicode::decode(text, "text");  // validates before anything is split
  std::vector<std::string> out;
  if (options_.flavor == Flavor::Clip) {
    tokenize_chunk(text, out);
    return out;
  }
  std::string prefixed;
  // Hugging Face's add_prefix_space: unless the text starts with whitespace (Python's str.isspace).
  if (options_.add_prefix_space && !cps.empty() && !is_python_space(cps.front())) {
    prefixed = " " + std::string(text);
    text = prefixed;
  }
  // The special tokens are split out first (leftmost match, the longest there); `<mask>` (lstrip) takes the
  // whitespace before it, as Python's str.rstrip() of the text on its left.
  std::size_t chunk_start = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::string* matched = nullptr;
    for (const std::string& s : special_tokens_) {
      if (text.compare(i, s.size(), s) == 0) {
        matched = &s;
        break;
      }
    }
    if (!matched) {
      ++i;  // special tokens are ASCII, so a match never starts inside a multi-byte character
      continue;
    }
    CodePoints left = unicode::decode(text.substr(chunk_start, i - chunk_start), "text");
    if (*matched == "<mask>")
      while (!left.empty() && is_python_space(left.back())) left.pop_back();
    tokenize_chunk(unicode::encode(left), out);
    out.push_back(*matched);
    i += matched->size();
    chunk_start = i;
  }
  tokenize_chunk(text.substr(chunk_start), out);
  return out;
}

std::int64_t ByteLevelBpeTokenizer::id_of(const std::string& token) const {
  if (const auto id = vocab_.find(token)) return *id;
  return *unk_id_;  // load() made sure every token BPE can make is in the vocabulary when there is no unk
}

Encoding ByteLevelBpeTokenizer::encode(std::string_view text, std::optional<std::string_view> text_b) const {
  const bool clip = options_.flavor == Flavor::Clip;
  if (text_b && clip) throw InputError("CLIP's tokenizer encodes one text, not a pair");
  if (text_b && options_.max_length < 5)
    throw InputError("max_length " + std::to_string(options_.max_length) +
                     " is too small for a pair: <s> A </s></s> B </s> needs at least 5 tokens");
  std::vector<std::string> a = tokenize(text);
  std::vector<std::string> b;
  if (text_b) {
    try {
      b = tokenize(*text_b);
    } catch (const InputError& e) {
      throw InputError(std::string("second ") + e.what());
    }
  }
  Encoding enc;
  const std::size_t room = static_cast<std::size_t>(options_.max_length) - (text_b ? 4 : 2);
  enc.truncated = truncate_longest_first(a, b, room, text_b.has_value());
  const auto add = [&](std::string token, std::int64_t id, std::int64_t mask) {
    enc.ids.push_back(id);
    enc.tokens.push_back(std::move(token));
    enc.token_type_ids.push_back(0);
    enc.attention_mask.push_back(mask);
  };
  const std::string bos = bos_token(), eos = eos_token();
  add(bos, bos_id_, 1);
  for (std::string& token : a) {
    const std::int64_t id = id_of(token);
    add(std::move(token), id, 1);
  }
  add(eos, eos_id_, 1);
  if (text_b) {
    add(eos, eos_id_, 1);
    for (std::string& token : b) {
      const std::int64_t id = id_of(token);
      add(std::move(token), id, 1);
    }
    add(eos, eos_id_, 1);
  }
  if (options_.pad_to_max_length) {
    const std::int64_t pad = pad_id();
    while (enc.ids.size() < static_cast<std::size_t>(options_.max_length)) add(vocab_.token(pad), pad, 0);
  }
  return enc;
}

}  // namespace attnlens
