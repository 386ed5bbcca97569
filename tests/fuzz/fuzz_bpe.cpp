// The byte-level BPE tokenizer (io/bpe): both pre-tokenisers on any text (UTF-8 checks, Unicode categories, NFC and
// lowercasing for CLIP), the heap-ordered merge loop, special tokens in text, pairs, truncation and padding; and,
// with flag 0x40, vocab.json + merges.txt themselves (parsed from the input, split at the first NUL).
// Byte 0: flags (1 CLIP, 2 add_prefix_space, 4 recognise special tokens, 8 pair, 16 pad, 0x40 files); byte 1:
// max_length; the rest: the text (a pair splits at the first record separator 0x1e).
#include <string>
#include <vector>

#include "io/bpe.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using attnlens::BpeOptions;

/// The 256 byte symbols (GPT-2's table, C.8) as UTF-8.
std::vector<std::string> byte_symbols() {
  std::vector<std::string> out;
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const char32_t cp = printable ? static_cast<char32_t>(b) : next++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    out.push_back(s);
  }
  return out;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

/// A vocabulary and merges for one flavour: the byte symbols (CLIP: also with </w>), a few merges over letters,
/// spaces and punctuation, and the flavour's special tokens.
const attnlens::ByteLevelBpeTokenizer& tokenizer(bool clip, const BpeOptions& o) {
  static std::string vocab[2], merges[2];
  const int k = clip ? 1 : 0;
  if (vocab[k].empty()) {
    std::vector<std::string> tokens = clip ? std::vector<std::string>{} : std::vector<std::string>{"<s>", "<pad>", "</s>", "<unk>"};
    for (const auto& s : byte_symbols()) tokens.push_back(s);
    if (clip)
      for (const auto& s : byte_symbols()) tokens.push_back(s + "</w>");
    const std::string e = clip ? "</w>" : "";
    const std::vector<std::pair<std::string, std::string>> pairs = {
        {"t", "h"}, {"th", "e" + e}, {"\xc4\xa0", "t"}, {"a", "a"}, {"aa", "aa"}, {"e", "r"}, {"o", "n" + e},
        {"\xc3", "\xa9"}, {"!", "!"}, {"'", "s" + e}, {"i", "n"}, {"in", "g" + e}, {"\xc4\xa0", "a"}};
    merges[k] = "#version: 0.2\n";
    for (const auto& [a, b] : pairs) {
      merges[k] += a + " " + b + "\n";
      tokens.push_back(a + b);
    }
    if (clip) {
      tokens.push_back("<|startoftext|>");
      tokens.push_back("<|endoftext|>");
    } else {
      tokens.push_back("<mask>");
    }
    vocab[k] = "{";
    for (size_t i = 0; i < tokens.size(); ++i) vocab[k] += (i ? "," : "") + json_string(tokens[i]) + ":" + std::to_string(i);
    vocab[k] += "}";
  }
  static std::vector<attnlens::ByteLevelBpeTokenizer> cache;
  cache.clear();
  cache.push_back(attnlens::ByteLevelBpeTokenizer::from_strings(vocab[k], merges[k], o));
  return cache.back();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace attnlens;
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  BpeOptions o;
  o.flavor = (flags & 1) ? BpeOptions::Flavor::Clip : BpeOptions::Flavor::Roberta;
  o.add_prefix_space = flags & 2;
  o.recognise_special_tokens = flags & 4;
  const bool pair = (flags & 8) && !(flags & 1);
  o.pad_to_max_length = flags & 16;
  o.max_length = data[1];  // 0 and 1 are out of range on purpose
  const std::string_view rest = fuzz::as_bytes(data + 2, size - 2);
  if (flags & 0x40) {
    const std::size_t cut = rest.find('\0');
    fuzz::only_input_errors([&] {
      const auto t = ByteLevelBpeTokenizer::from_strings(rest.substr(0, cut),
                                                         cut == std::string_view::npos ? "" : rest.substr(cut + 1), o);
      t.encode("the quick brown fox, don't!");
    });
    return 0;
  }
  const std::size_t cut = pair ? rest.find('\x1e') : std::string_view::npos;
  const std::string_view a = rest.substr(0, cut);
  const std::optional<std::string_view> b =
      cut == std::string_view::npos ? std::nullopt : std::optional<std::string_view>(rest.substr(cut + 1));
  fuzz::only_input_errors([&] {
    const ByteLevelBpeTokenizer& tok = tokenizer(flags & 1, o);
    const Encoding e = tok.encode(a, b);
    if (e.tokens.size() != e.ids.size() || e.ids.size() != e.token_type_ids.size() ||
        e.ids.size() != e.attention_mask.size() || static_cast<int>(e.ids.size()) > o.max_length || e.ids.size() < 2)
      fuzz::invariant_failed("encoding sizes");
    if (o.pad_to_max_length && static_cast<int>(e.ids.size()) != o.max_length) fuzz::invariant_failed("padding");
    for (std::size_t i = 0; i < e.ids.size(); ++i)
      if (tok.vocabulary().token(e.ids[i]) != e.tokens[i]) fuzz::invariant_failed("token/id mismatch");
    if (e.ids.front() != tok.bos_id()) fuzz::invariant_failed("first token");
    // Without truncation, the symbols of the pieces spell the text's bytes (RoBERTa: nothing is normalised).
    if (!e.truncated && !b && o.flavor == BpeOptions::Flavor::Roberta && !o.recognise_special_tokens &&
        !o.add_prefix_space) {
      std::string joined;
      for (const std::string& piece : tok.pre_tokenize(a)) joined += piece;
      if (joined != a) fuzz::invariant_failed("pre-tokens do not cover the text");
    }
  });
  return 0;
}
