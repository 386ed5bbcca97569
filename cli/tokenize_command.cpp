// `attnlens tokenize`: the encodings of texts as JSON, to check what a text model will see: BERT WordPiece (spec 9)
// or byte-level BPE (RoBERTa, CLIP; MODELS.md C.7, E.3), chosen from the model folder's files.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "cli/attention_commands.hpp"
#include "io/text_tokenizer.hpp"

namespace attnlens::cli {

namespace {

struct TokenizeState {
  std::string vocab;
  std::string tokenizer = "auto";
  bool lowercase = false;
  bool cased = false;
  int max_length = 512;
  std::string texts_file;
  std::vector<std::string> texts;  ///< TEXT [TEXT_B] as given: 0, 1 or 2 entries
  std::string text_a, text_b;
};

/// --vocab is a tokenizer file (vocab.txt; vocab.json with merges.txt beside it) or a model folder holding one;
/// --tokenizer auto picks the kind from the files (io/text_tokenizer.hpp). In a folder, "do_lower_case" of
/// tokenizer_config.json, then config.json, sets WordPiece's default casing; without either, BERT uncased.
TextTokenizer make_tokenizer(const TokenizeState& st) {
  TextTokenizerSettings settings;
  settings.kind = st.tokenizer;
  if (st.cased) settings.lowercase = false;
  if (st.lowercase) settings.lowercase = true;
  settings.max_length = st.max_length;
  TextTokenizer tokenizer = TextTokenizer::load(st.vocab, settings);
  if ((st.cased || st.lowercase) && !tokenizer.wordpiece())
    throw InputError("--cased/--lowercase set WordPiece's casing; this is a " + tokenizer.kind() + " BPE tokenizer");
  return tokenizer;
}

nlohmann::ordered_json to_json(const Encoding& e) {
  nlohmann::ordered_json j;
  j["tokens"] = e.tokens;
  j["ids"] = e.ids;
  j["token_type_ids"] = e.token_type_ids;
  j["attention_mask"] = e.attention_mask;
  j["truncated"] = e.truncated;
  return j;
}

std::string json_line(const Encoding& e) {
  // ensure_ascii off: tokens are printed as UTF-8 (they are valid: text and vocabulary were checked).
  return to_json(e).dump(-1, ' ', false) + "\n";
}

void run_tokenize(const TokenizeState& st) {
  if (st.max_length < 2) throw InputError("--max-length " + std::to_string(st.max_length) + " must be at least 2");
  if (!st.texts_file.empty() && !st.texts.empty()) throw InputError("give TEXT [TEXT_B] or --texts FILE, not both");
  if (st.texts_file.empty() && st.texts.empty()) throw InputError("nothing to tokenize: give TEXT [TEXT_B] or --texts FILE");
  const TextTokenizer tokenizer = make_tokenizer(st);

  // Everything is encoded before anything is printed, so a bad line leaves stdout empty.
  std::string out;
  if (st.texts_file.empty()) {
    const std::optional<std::string_view> text_b =
        st.texts.size() > 1 ? std::optional<std::string_view>(st.texts[1]) : std::nullopt;
    out = json_line(tokenizer.encode(st.texts[0], text_b));
  } else {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(st.texts_file, ec)) {
      throw InputError("--texts: cannot read '" + st.texts_file + "'");
    }
    std::ifstream in(st.texts_file, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    // One text per line, an empty line included (it encodes to [CLS] [SEP]) so output line k belongs to input line
    // k; a final newline ends the last line rather than starting an empty one.
    std::size_t start = 0;
    for (int line = 1; start < bytes.size(); ++line) {
      std::size_t end = bytes.find('\n', start);
      if (end == std::string::npos) end = bytes.size();
      std::string_view text(bytes.data() + start, end - start);
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      try {
        out += json_line(tokenizer.encode(text));
      } catch (const InputError& e) {
        throw InputError(st.texts_file + " line " + std::to_string(line) + ": " + e.what());
      }
      start = end + 1;
    }
  }
  std::cout << out << std::flush;
}

}  // namespace

void add_tokenize_command(CLI::App& app, Action& action) {
  auto st = std::make_shared<TokenizeState>();
  CLI::App* sub = app.add_subcommand(
      "tokenize",
      "Tokenisation as Hugging Face's slow tokenizers do it: BERT WordPiece (vocab.txt, spec 9) or byte-level BPE "
      "(vocab.json + merges.txt: RoBERTa, CLIP); prints {\"tokens\", \"ids\", \"token_type_ids\", "
      "\"attention_mask\", \"truncated\"} as one JSON line per text (JSON Lines with --texts)");
  sub->add_option("--vocab", st->vocab,
                  "vocab.txt, vocab.json (merges.txt beside it), or a model folder with either (and do_lower_case in "
                  "tokenizer_config.json or config.json for WordPiece)")
      ->required();
  sub->add_option("--tokenizer", st->tokenizer,
                  "auto (default: vocab.txt is WordPiece; vocab.json + merges.txt a byte-level BPE, CLIP's when the "
                  "vocabulary has <|startoftext|>, else RoBERTa's), wordpiece, roberta or clip")
      ->check(CLI::IsMember({"auto", "wordpiece", "roberta", "clip"}));
  CLI::Option* lower =
      sub->add_flag("--lowercase", st->lowercase, "WordPiece: lowercase and strip accents (BERT uncased)");
  CLI::Option* cased = sub->add_flag("--cased", st->cased, "WordPiece: keep case and accents (BERT cased)");
  lower->excludes(cased);
  sub->add_option("--max-length", st->max_length,
                  "Most tokens per encoding, the special tokens included (default 512; CLIP's context is 77)");
  sub->add_option("--texts", st->texts_file, "File with one text per line; prints one JSON object per line");
  CLI::Option* text_a = sub->add_option("text", st->text_a, "The text ([CLS] TEXT [SEP], <s> TEXT </s>)");
  CLI::Option* text_b =
      sub->add_option("text_b", st->text_b, "Second text of a pair ([CLS] TEXT [SEP] TEXT_B [SEP], <s> A </s></s> B </s>)");
  sub->callback([st, text_a, text_b, &action] {
    // An empty TEXT "" is still a text, so presence is what counts, not the value.
    st->texts.clear();
    if (text_a->count() > 0) st->texts.push_back(st->text_a);
    if (text_b->count() > 0) st->texts.push_back(st->text_b);
    action = [st] { run_tokenize(*st); };
  });
}

}  // namespace attnlens::cli
