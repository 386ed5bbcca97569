// `attnlens tokenize`: BERT WordPiece encodings of texts as JSON (spec 9), to check what a text model will see.
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
#include "io/vocab.hpp"
#include "io/wordpiece.hpp"

namespace attnlens::cli {

namespace {

struct TokenizeState {
  std::string vocab;
  bool lowercase = false;
  bool cased = false;
  int max_length = 512;
  std::string texts_file;
  std::vector<std::string> texts;  ///< TEXT [TEXT_B] as given: 0, 1 or 2 entries
  std::string text_a, text_b;
};

/// "do_lower_case" of a JSON file in a model folder, or nullopt when the file or the key is absent.
std::optional<bool> do_lower_case_in(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return std::nullopt;
  std::ifstream in(file);
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(file.string() + ": not valid JSON (" + e.what() + ")");
  }
  if (!config.is_object() || !config.contains("do_lower_case")) return std::nullopt;
  if (!config["do_lower_case"].is_boolean()) throw InputError(file.string() + ": \"do_lower_case\" is not true/false");
  return config["do_lower_case"].get<bool>();
}

/// --vocab is a vocab.txt or a model folder holding one. In a folder, "do_lower_case" sets the default casing:
/// Hugging Face keeps it in tokenizer_config.json (read first); config.json is read as well, since some exports put
/// it there. Without either, BERT uncased (lowercase).
WordPieceTokenizer make_tokenizer(const TokenizeState& st) {
  std::string vocab_path = st.vocab;
  std::optional<bool> lowercase;
  std::error_code ec;
  if (std::filesystem::is_directory(st.vocab, ec)) {
    const std::filesystem::path dir(st.vocab);
    vocab_path = (dir / "vocab.txt").string();
    if (!std::filesystem::exists(vocab_path, ec)) throw InputError("--vocab: folder '" + st.vocab + "' has no vocab.txt");
    lowercase = do_lower_case_in(dir / "tokenizer_config.json");
    if (!lowercase) lowercase = do_lower_case_in(dir / "config.json");
  }
  TokenizerOptions options;
  options.lowercase = st.cased ? false : st.lowercase ? true : lowercase.value_or(true);
  options.max_length = st.max_length;
  return WordPieceTokenizer(Vocabulary::load(vocab_path), options);
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
  const WordPieceTokenizer tokenizer = make_tokenizer(st);

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
      "BERT WordPiece tokenisation as Hugging Face's BertTokenizer (spec 9): prints {\"tokens\", \"ids\", "
      "\"token_type_ids\", \"attention_mask\", \"truncated\"} as one JSON line per text (JSON Lines with --texts)");
  sub->add_option("--vocab", st->vocab, "vocab.txt, or a model folder with vocab.txt (and do_lower_case in "
                                        "tokenizer_config.json or config.json)")
      ->required();
  CLI::Option* lower = sub->add_flag("--lowercase", st->lowercase, "Lowercase and strip accents (BERT uncased)");
  CLI::Option* cased = sub->add_flag("--cased", st->cased, "Keep case and accents (BERT cased)");
  lower->excludes(cased);
  sub->add_option("--max-length", st->max_length, "Most tokens per encoding, [CLS] and [SEP] included (default 512)");
  sub->add_option("--texts", st->texts_file, "File with one text per line; prints one JSON object per line");
  CLI::Option* text_a = sub->add_option("text", st->text_a, "The text ([CLS] TEXT [SEP])");
  CLI::Option* text_b = sub->add_option("text_b", st->text_b, "Second text of a pair ([CLS] TEXT [SEP] TEXT_B [SEP])");
  sub->callback([st, text_a, text_b, &action] {
    // An empty TEXT "" is still a text, so presence is what counts, not the value.
    st->texts.clear();
    if (text_a->count() > 0) st->texts.push_back(st->text_a);
    if (text_b->count() > 0) st->texts.push_back(st->text_b);
    action = [st] { run_tokenize(*st); };
  });
}

}  // namespace attnlens::cli
