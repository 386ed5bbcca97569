// What the text subcommands share: the options naming a text model, and `explain --text`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/attention_commands.hpp"
#include "explain/method.hpp"
#include "eval/text_applications.hpp"
#include "models/text_model.hpp"

namespace attnlens::cli {

struct TextModelOptions {
  std::string model;  ///< folder with model.safetensors, config.json, tokenizer files; empty = the bundled one
  std::string device = "cpu";
  int max_length = 0;                     ///< tokens per text incl. [CLS]/[SEP]; 0 = the model's position count
  bool cased = false, lowercase = false;  ///< override config.json's do_lower_case
};

/// Adds --model, --device, --max-length, --cased/--lowercase.
void add_text_model_options(CLI::App* app, TextModelOptions& options);

/// The model the options name (the bundled one when --model is not given).
TextModel open_text_model(const TextModelOptions& options);

/// encode_text, with a warning on stderr (unless quiet) when the text was truncated.
EncodedText encode_text_or_warn(const TextModel& model, const std::string& text, bool quiet);

/// The text part of `explain`: options only text needs, set on the shared explain command.
struct TextExplainOptions {
  std::vector<std::string> texts;  ///< --text (repeatable)
  std::string texts_file;          ///< --texts FILE: one text per line
  TextModelOptions model;
  int label = -1;                    ///< gold label for --target gold
  std::string target = "predicted";  ///< predicted | gold (AttAttr's F)
  int steps = 20;
  std::string riemann = "right";
  int ig_batch = 0;
  std::string blank_token = "mask";  ///< mask, unk or a vocabulary token
  bool column_max = false;  ///< raw/rollout/flow: column max over rows (Abnar's SST script)
  bool save_attention = false;
  bool active() const { return !texts.empty() || !texts_file.empty(); }
};

/// Runs `explain` on texts: per text an HTML snippet, the AttAttr tensor (.npy), tokens.csv, summary.json and one
/// index.html page.
void run_explain_text(const TextExplainOptions& options, std::vector<std::string> methods, MethodSettings settings,
                      int category, const std::string& output, bool quiet);

/// The labelled texts of `split` ("test", "train", "all") of `data` (empty: the fetched data/sentiment), the first
/// `limit` (0 = all), encoded for `model`; a warning on stderr (unless quiet) for texts cut to the model's length.
LabelledTexts load_labelled_split(const TextModel& model, const std::string& data, const std::string& split, int limit,
                                  bool quiet);

/// prune, tree, triggers, attack words.
void add_text_commands(CLI::App& app, Action& action);

}  // namespace attnlens::cli
