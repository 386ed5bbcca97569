#include "io/text_tokenizer.hpp"

#include <filesystem>

#include "core/array.hpp"
#include "io/model_config.hpp"

namespace attnlens {

namespace {

namespace fs = std::filesystem;

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

/// do_lower_case of tokenizer_config.json (where Hugging Face keeps it), else of config.json (some exports put it
/// there), else nullopt.
std::optional<bool> folder_lowercase(const fs::path& dir) {
  for (const char* name : {"tokenizer_config.json", "config.json"}) {
    const fs::path file = dir / name;
    if (!is_file(file)) continue;
    const auto j = read_config_json(file.string());
    if (!j || !j->contains("do_lower_case") || (*j)["do_lower_case"].is_null()) continue;
    bool lowercase = true;
    read_config_key(*j, "do_lower_case", lowercase, file.string());
    return lowercase;
  }
  return std::nullopt;
}

}  // namespace

TextTokenizer TextTokenizer::load(const std::string& path, const TextTokenizerSettings& s) {
  const std::string& kind = s.kind;
  if (kind != "auto" && kind != "wordpiece" && kind != "roberta" && kind != "clip")
    throw InputError("unknown tokenizer '" + kind + "' (known: auto, wordpiece, roberta, clip)");
  std::error_code ec;
  const bool folder = fs::is_directory(path, ec);
  if (!folder && !fs::exists(path, ec)) throw InputError("cannot read tokenizer files '" + path + "': no such file");
  const fs::path dir = folder ? fs::path(path) : fs::path(path).parent_path();
  fs::path vocab_txt, vocab_json, merges_txt;
  if (folder) {
    if (is_file(dir / "vocab.txt")) vocab_txt = dir / "vocab.txt";
    if (is_file(dir / "vocab.json")) vocab_json = dir / "vocab.json";
  } else if (fs::path(path).extension() == ".json") {
    vocab_json = path;
  } else {
    vocab_txt = path;
  }
  if (!vocab_json.empty() && is_file(dir / "merges.txt")) merges_txt = dir / "merges.txt";

  const bool bpe_files = !vocab_json.empty() && !merges_txt.empty();
  std::string chosen = kind;
  if (chosen == "auto") {
    if (!vocab_txt.empty()) {
      chosen = "wordpiece";
    } else if (bpe_files) {
      chosen = "bpe";
    } else {
      throw InputError("'" + path + "' has no vocab.txt (WordPiece) nor vocab.json and merges.txt (byte-level BPE)" +
                       (vocab_json.empty() ? "" : ": merges.txt is missing"));
    }
  }
  if (chosen == "wordpiece") {
    if (vocab_txt.empty()) throw InputError("'" + dir.string() + "' has no vocab.txt (the WordPiece vocabulary)");
    TokenizerOptions o;
    o.lowercase = s.lowercase ? *s.lowercase : folder ? folder_lowercase(dir).value_or(true) : true;
    o.max_length = s.max_length;
    return TextTokenizer(WordPieceTokenizer(Vocabulary::load(vocab_txt.string()), o));
  }
  if (!bpe_files)
    throw InputError("'" + dir.string() + "' has no vocab.json and merges.txt (the " + kind +
                     " byte-level BPE files)" + (vocab_json.empty() ? "" : ": merges.txt is missing"));
  BpeOptions o;
  o.max_length = s.max_length;
  if (chosen == "bpe") {
    // CLIP's vocabulary is the only one with its start token (RoBERTa's and GPT-2's have <s> or <|endoftext|>).
    chosen = ByteLevelBpeTokenizer::read_vocab_json(vocab_json.string()).find("<|startoftext|>") ? "clip" : "roberta";
  }
  o.flavor = chosen == "clip" ? BpeOptions::Flavor::Clip : BpeOptions::Flavor::Roberta;
  return TextTokenizer(ByteLevelBpeTokenizer::load(vocab_json.string(), merges_txt.string(), o));
}

std::string TextTokenizer::kind() const {
  if (wordpiece()) return "wordpiece";
  return bpe()->options().flavor == BpeOptions::Flavor::Clip ? "clip" : "roberta";
}

Encoding TextTokenizer::encode(std::string_view text, std::optional<std::string_view> text_b) const {
  return std::visit([&](const auto& t) { return t.encode(text, text_b); }, impl_);
}

const Vocabulary& TextTokenizer::vocabulary() const {
  return std::visit([](const auto& t) -> const Vocabulary& { return t.vocabulary(); }, impl_);
}

int TextTokenizer::max_length() const {
  return std::visit([](const auto& t) { return t.options().max_length; }, impl_);
}

std::int64_t TextTokenizer::cls_id() const { return wordpiece() ? wordpiece()->cls_id() : bpe()->bos_id(); }
std::int64_t TextTokenizer::sep_id() const { return wordpiece() ? wordpiece()->sep_id() : bpe()->eos_id(); }
std::int64_t TextTokenizer::pad_id() const {
  return std::visit([](const auto& t) { return t.pad_id(); }, impl_);
}
std::int64_t TextTokenizer::unk_id() const {
  return std::visit([](const auto& t) { return t.unk_id(); }, impl_);
}
std::int64_t TextTokenizer::mask_id() const {
  return std::visit([](const auto& t) { return t.mask_id(); }, impl_);
}

std::string TextTokenizer::pad_token() const {
  try {
    return vocabulary().token(pad_id());
  } catch (const InputError&) {
    return "";
  }
}

}  // namespace attnlens
