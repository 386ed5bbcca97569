// Text subcommands on a text classifier (BERT, DistilBERT, RoBERTa): `explain --text`, and AttAttr's applications `prune`, `tree`, `triggers`
// and the word-substitution attack `attack words`.
#include "cli/text_commands.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>

#include "cli/item_run.hpp"
#include "cli/model_inputs.hpp"
#include "cli/processes.hpp"
#include "eval/text_applications.hpp"
#include "explain/text_methods.hpp"
#include "io/array_writer.hpp"
#include "io/atomic_file.hpp"
#include "io/csv_record.hpp"
#include "io/text_dataset.hpp"
#include "viz/html.hpp"
#include "viz/svg.hpp"
#include "viz/text_highlight.hpp"
#include "viz/tree_dot.hpp"

namespace attnlens::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string bundled_text_model() {
  if (const char* env = std::getenv("ATTNLENS_TEXT_MODEL")) return env;
  const std::string found = find_bundled("data/models/sentiment-bert");
  if (found.empty())
    throw InputError("no --model given and the bundled model data/models/sentiment-bert was not found");
  return found;
}

std::string bundled_text_data() {
  const std::string found = find_bundled("data/sentiment");
  if (found.empty())
    throw InputError("no --data given and data/sentiment was not found (fetch it: bash tools/fetch_sentiment.sh)");
  return found;
}

std::string join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

/// "mask" and "unk": the tokenizer's own ([MASK] / <mask>, [UNK] / <unk>); anything else a vocabulary token.
std::int64_t special_or_vocabulary_id(const TextModel& tm, const std::string& token, const std::string& option) {
  if (token == "mask") return tm.tokenizer.mask_id();
  if (token == "unk") return tm.tokenizer.unk_id();
  return vocabulary_id(tm, token, option);
}

RiemannSum parse_riemann(const std::string& s) {
  if (s == "right") return RiemannSum::Right;
  if (s == "left") return RiemannSum::Left;
  throw InputError("--riemann must be right (the paper) or left (the reference code), got '" + s + "'");
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Model and texts
// ---------------------------------------------------------------------------------------------------------------

void add_text_model_options(CLI::App* app, TextModelOptions& o) {
  app->add_option("--model", o.model,
                  "Text classifier: folder with model.safetensors (Hugging Face BertForSequenceClassification, "
                  "DistilBertForSequenceClassification or RobertaForSequenceClassification names), config.json and "
                  "the tokenizer (vocab.txt, or vocab.json + merges.txt) (default: the bundled "
                  "data/models/sentiment-bert)");
  app->add_option("--device", o.device, "cpu (default) or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app->add_option("--max-length", o.max_length,
                  "Tokens per text including [CLS] and [SEP]; longer texts are truncated with a warning "
                  "(default: the model's position count)")
      ->check(CLI::NonNegativeNumber);
  app->add_flag("--cased", o.cased, "Keep case and accents (bert-*-cased); default: config.json's do_lower_case");
  app->add_flag("--lowercase", o.lowercase, "Lowercase and strip accents (bert-*-uncased)");
}

TextModel open_text_model(const TextModelOptions& o) {
  if (o.cased && o.lowercase) throw InputError("--cased and --lowercase exclude each other");
  TextModelSettings settings;
  settings.device = o.device;
  settings.max_length = o.max_length;
  if (o.cased) settings.lowercase = false;
  if (o.lowercase) settings.lowercase = true;
  return load_text_model(o.model.empty() ? bundled_text_model() : o.model, settings);
}

EncodedText encode_text_or_warn(const TextModel& m, const std::string& text, bool quiet) {
  EncodedText e = encode_text(m, text);
  if (e.encoding.truncated && !quiet)
    std::cerr << "attnlens: warning: text truncated to " << e.encoding.ids.size() << " tokens: '" << text.substr(0, 60)
              << (text.size() > 60 ? "...'" : "'") << std::endl;
  return e;
}

// ---------------------------------------------------------------------------------------------------------------
// explain --text
// ---------------------------------------------------------------------------------------------------------------

namespace {

std::vector<std::string> read_texts(const TextExplainOptions& o) {
  std::vector<std::string> texts = o.texts;
  if (!o.texts_file.empty()) {
    std::ifstream in(o.texts_file);
    if (!in) throw InputError("cannot read --texts file " + o.texts_file);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) texts.push_back(line);
    }
  }
  if (texts.empty()) throw InputError("no texts to explain (empty --text or --texts file)");
  for (const auto& t : texts)
    if (t.find_first_not_of(" \t\r\n") == std::string::npos) throw InputError("empty --text");
  return texts;
}

}  // namespace

void run_explain_text(const TextExplainOptions& o, std::vector<std::string> methods, MethodSettings s, int category,
                      const std::string& output, bool quiet) {
  // Every check that needs no model comes first, so bad options write nothing.
  if (output.empty()) throw InputError("-o DIR is required");
  if (methods.size() == 1 && methods[0] == "all") methods = text_method_names();
  if (o.target != "predicted" && o.target != "gold") throw InputError("--target must be predicted or gold");
  if (o.target == "gold" && o.label < 0) throw InputError("--target gold needs --label");
  AttAttrOptions ig;
  ig.steps = o.steps;
  ig.riemann = parse_riemann(o.riemann);
  ig.batch = o.ig_batch;
  if (ig.steps < 1) throw InputError("--steps must be >= 1");
  if (o.column_max) s.query_row = kColumnMax;
  for (const auto& m : methods)
    if (m == "random") throw InputError("method random is a baseline of attack words, not an explanation");
  const auto texts = read_texts(o);

  const TextModel tm = open_text_model(o.model);
  const TextClassifierConfig& c = tm.model->config();
  if (category >= c.num_labels)
    throw InputError("--category " + std::to_string(category) + " is out of range: the model has " +
                     std::to_string(c.num_labels) + " classes");
  if (o.label >= c.num_labels) throw InputError("--label is out of range for this model");
  const bool blank = std::find(methods.begin(), methods.end(), "blankout") != methods.end();
  const TextScorer scorer(tm, methods, s, ig, blank ? special_or_vocabulary_id(tm, o.blank_token, "--blank-token") : -1);
  std::vector<EncodedText> encoded;
  for (const auto& t : texts) encoded.push_back(encode_text_or_warn(tm, t, quiet));

  const fs::path out = output;
  std::vector<std::pair<std::string, std::string>> files;  // written only when every text succeeded
  std::ostringstream csv;
  csv << "text,method,target,label,token_index,token,score\n";
  json summary{{"model", tm.path}, {"methods", methods}, {"texts", json::array()}};
  HtmlReport page("attnlens explain: text");
  page.paragraph("Model: " + tm.path + ". Methods: " + join(methods) +
                 ". Red: the token supported the explained class; blue: it spoke against it. Each method is coloured "
                 "over the words it explains: " +
                 tm.tokenizer.cls_token() + " and " + tm.tokenizer.sep_token() +
                 " are drawn but do not set its colour scale (tokens.csv has every score).");
  ProgressBar bar("explain", "texts", !quiet);
  std::map<std::string, double> seconds;
  for (size_t i = 0; i < encoded.size(); ++i) {
    const EncodedText& e = encoded[i];
    // -1: the predicted class, which the scorer's one capture tells.
    const auto scores = scorer.score(e, category >= 0 ? category : o.target == "gold" ? o.label : -1, &seconds);
    const auto& probs = scores.probabilities;
    const std::int64_t predicted = std::max_element(probs.begin(), probs.end()) - probs.begin();
    const std::int64_t target = scores.target;
    std::ostringstream stem_stream;
    stem_stream << std::setw(3) << std::setfill('0') << i;
    const std::string stem = stem_stream.str();
    json entry{{"text", e.text},          {"tokens", e.encoding.tokens},
               {"ids", e.encoding.ids},   {"predicted", predicted},
               {"target", target},        {"label", text_label(c, target)},
               {"probabilities", probs},  {"truncated", e.encoding.truncated},
               {"scores", json::object()}};
    if (o.label >= 0) entry["gold"] = o.label;
    std::vector<std::vector<double>> rows;
    for (const auto& name : methods) {
      const auto& v = scores.by_method.at(name);
      entry["scores"][name] = v;
      rows.push_back(v);
      for (size_t k = 0; k < v.size(); ++k)
        csv << i << "," << name << "," << target << "," << csv_field(text_label(c, target)) << "," << k << ","
            << csv_field(e.encoding.tokens[k]) << "," << fmt_number(v[k]) << "\n";
    }
    if (!scores.attattr.data.empty()) {
      files.emplace_back((out / (stem + "_attattr.npy")).string(),
                         encode_array(scores.attattr, {"layer", "head", "query", "key"}, ".npy"));
      entry["outputs"]["attattr"] = stem + "_attattr.npy";
    }
    if (o.save_attention) {
      files.emplace_back((out / (stem + "_attention.npy")).string(),
                         encode_array(scores.attention, {"layer", "head", "query", "key"}, ".npy"));
      entry["outputs"]["attention"] = stem + "_attention.npy";
    }
    HighlightOptions view;  // special tokens drawn, the scale set by the words
    view.unscaled_tokens = {tm.tokenizer.cls_token(), tm.tokenizer.sep_token(), tm.tokenizer.pad_token()};
    const std::string snippet = highlight_tokens_html(e.encoding.tokens, rows, methods, view);
    files.emplace_back((out / (stem + "_tokens.html")).string(), snippet);
    entry["outputs"]["html"] = stem + "_tokens.html";
    summary["texts"].push_back(entry);
    page.section("Text " + std::to_string(i) + ": predicted " + text_label(c, predicted) +
                 " (p = " + TableCell::format_real(probs[static_cast<size_t>(predicted)]) +
                 "), explained: " + text_label(c, target));
    page.paragraph(e.text);
    page.fragment(snippet);
    bar.update(static_cast<long long>(i + 1), static_cast<long long>(encoded.size()));
  }
  bar.finish();
  summary["seconds"] = seconds;
  files.emplace_back((out / "tokens.csv").string(), csv.str());
  files.emplace_back((out / "summary.json").string(), summary.dump(2));
  files.emplace_back((out / "index.html").string(), page.html());
  for (const auto& [path, content] : files) write_file_atomic(path, content);
  if (!quiet)
    std::cout << "explained " << encoded.size() << " text(s) with " << methods.size() << " method(s); outputs in "
              << out.string() << " (open index.html)" << std::endl;
}

// ---------------------------------------------------------------------------------------------------------------
// prune, tree, triggers, attack words
// ---------------------------------------------------------------------------------------------------------------

namespace {

struct DataOptions {
  std::string data;  ///< empty: the fetched data/sentiment
  std::string split = "test";
  int limit = 0;
};

void add_data_options(CLI::App* app, DataOptions& o, const std::string& default_split, const std::string& what) {
  o.split = default_split;
  app->add_option("--data", o.data,
                  "Labelled texts: a folder with the sentiment@5.0.2 fixtures (amazon/imdb/yelp.json), one such "
                  "JSON file, or a TSV of label<TAB>text (default: data/sentiment, see tools/fetch_sentiment.sh)");
  app->add_option("--split", o.split,
                  "Which texts " + what + ": test (i % 5 == 4), train or all (default " + default_split + ")")
      ->check(CLI::IsMember({"all", "train", "test"}));
  app->add_option("--limit", o.limit, "Use only the first N texts of the split (default all)")
      ->check(CLI::NonNegativeNumber);
}

LabelledTexts load_labelled(const TextModel& tm, const DataOptions& o, const std::string& split, bool quiet) {
  const std::string path = o.data.empty() ? bundled_text_data() : o.data;
  std::vector<TextExample> examples = load_text_dataset(path, parse_text_split(split));
  if (o.limit > 0 && static_cast<size_t>(o.limit) < examples.size()) examples.resize(static_cast<size_t>(o.limit));
  LabelledTexts t = encode_labelled(tm, std::move(examples), path);
  if (t.truncated > 0 && !quiet)
    std::cerr << "attnlens: warning: " << t.truncated << " text(s) truncated to the model's "
              << tm.tokenizer.max_length() << " tokens" << std::endl;
  return t;
}

/// A progress callback drawing `bar` (empty when the bar is off).
ProgressFn progress_of(ProgressBar& bar) {
  if (!bar.enabled()) return {};
  return [&bar](long long done, long long total) { bar.update(done, total); };
}

struct IgCliOptions {
  int steps = 20;
  std::string riemann = "right";
  int batch = 0;
  AttAttrOptions resolve() const {
    AttAttrOptions o;
    o.steps = steps;
    o.riemann = parse_riemann(riemann);
    o.batch = batch;
    if (o.steps < 1) throw InputError("--steps must be >= 1");
    return o;
  }
};

void add_ig_options(CLI::App* app, IgCliOptions& o, int default_steps) {
  o.steps = default_steps;
  app->add_option("--steps", o.steps, "AttAttr integration steps m (default " + std::to_string(default_steps) + ")")
      ->check(CLI::PositiveNumber);
  app->add_option("--riemann", o.riemann, "right (default, the paper) or left (the reference code)")
      ->check(CLI::IsMember({"right", "left"}));
  app->add_option("--ig-batch", o.batch, "Alphas per forward/backward (default 0 = all)")
      ->check(CLI::NonNegativeNumber);
}

// ---- prune ----

struct PruneState {
  TextModelOptions model;
  DataOptions data;
  IgCliOptions ig;
  int examples = 200;
  int seed = 0;
  int batch = 64;
  int threads = 0;
  bool resume = false;
  std::string shard;
  std::string output;
  bool quiet = false;
};

// Reads the [L,H] importances (rows "attattr", "attention" per text) of prune's first stage and sums them in text
// order, as one process does.
HeadImportance summed_importance(const std::string& table_text, const RunTable& table, int L, int H) {
  HeadImportance sum{Array({L, H}), Array({L, H})};
  std::size_t pos = table.header.size();
  std::vector<std::string> f;
  for (std::size_t i = 0; i < table.items; ++i)
    for (Array* a : {&sum.attattr, &sum.attention}) {
      const std::string where = table.name + " item " + std::to_string(i);
      if (!next_csv_record(table_text, pos, f) || f.size() != 2 + static_cast<std::size_t>(L * H))
        throw InputError(where + ": not a row of head importances");
      for (int k = 0; k < L * H; ++k) a->data[k] += parse_csv_number(f[2 + static_cast<std::size_t>(k)], where);
    }
  return sum;
}

// Prune's finisher (cli/item_run.hpp): prune.csv, prune.json, prune.svg and importance_attattr.npy from the
// per-text predictions of the second stage; the importances travel in the run's identity.
RunOutputs prune_outputs(const std::string& out_dir, const RunIdentity& id, const std::string& table_text,
                         const std::vector<std::string>& part_dirs, std::optional<int> threads) {
  const fs::path out = out_dir;
  const RunTable table = run_table_of(id);
  const std::vector<std::string> orders = id.at("order_names").get<std::vector<std::string>>();
  const std::vector<double> rates = pruning_rates();
  const int L = id.at("layers").get<int>(), H = id.at("heads").get<int>();
  std::vector<std::vector<double>> correct(orders.size(), std::vector<double>(rates.size(), 0.0));
  std::size_t pos = table.header.size();
  std::vector<std::string> f;
  for (std::size_t i = 0; i < table.items; ++i)
    for (std::size_t o = 0; o < orders.size(); ++o) {
      const std::string where = (out / table.name).string() + " item " + std::to_string(i);
      if (!next_csv_record(table_text, pos, f) || f.size() != 3 + rates.size() || f[2] != orders[o])
        throw InputError(where + ": not the row of order " + orders[o]);
      const double label = parse_csv_number(f[1], where);
      for (std::size_t k = 0; k < rates.size(); ++k) correct[o][k] += parse_csv_number(f[3 + k], where) == label;
    }
  const double n = static_cast<double>(table.items);
  std::ostringstream csv, terminal;
  csv << "rate,heads_pruned";
  for (const auto& name : orders) csv << ",accuracy_" << name;
  csv << "\n";
  json result{{"run", id},
              {"model", id.at("model")},
              {"texts", table.items},
              {"importance_examples", id.at("importance_examples")},
              {"steps", id.at("steps")},
              {"riemann", id.at("riemann")},
              {"parts", part_dirs.size() == 1 ? 1 : part_dirs.size() - 1},
              {"rates", json::array()}};
  if (threads) result["threads"] = *threads;
  std::vector<std::vector<double>> accuracy(orders.size());
  for (size_t k = 0; k < rates.size(); ++k) {
    const int pruned = heads_pruned(rates[k], L * H);
    csv << rates[k] << "," << pruned;
    json row{{"rate", rates[k]}, {"heads_pruned", pruned}};
    for (size_t o = 0; o < orders.size(); ++o) {
      const double acc = table.items ? correct[o][k] / n : 0.0;
      accuracy[o].push_back(acc);
      csv << "," << fmt_number(acc);
      row["accuracy_" + orders[o]] = acc;
    }
    csv << "\n";
    result["rates"].push_back(row);
  }
  Array attattr({L, H}), attention({L, H});
  attattr.data = id.at("importance_attattr").get<std::vector<double>>();
  attention.data = id.at("importance_attention").get<std::vector<double>>();
  result["importance_attattr"] = attattr.data;
  result["importance_attention"] = attention.data;
  PlotOptions po;
  po.title = "Accuracy as heads are pruned (" + std::to_string(table.items) + " texts)";
  po.x_label = "share of heads pruned";
  po.y_label = "accuracy";
  po.y_min = 0.0;
  po.y_max = 1.0;
  Plot plot(po);
  for (size_t o = 0; o < orders.size(); ++o) plot.line(orders[o], rates, accuracy[o], {}, true);
  terminal << "accuracy with 0%..100% of the " << L * H << " heads pruned (attattr / attention / random):\n";
  for (size_t k = 0; k < rates.size(); ++k)
    terminal << "  " << static_cast<int>(std::lround(rates[k] * 100)) << "%: " << fmt_number(accuracy[0][k]) << " / "
             << fmt_number(accuracy[1][k]) << " / " << fmt_number(accuracy[2][k]) << "\n";
  terminal << "outputs written to " << out.string() << "\n";
  RunOutputs o;
  o.files = {{(out / "prune.csv").string(), csv.str()},
             {(out / "prune.json").string(), result.dump(2)},
             {(out / "prune.svg").string(), plot.svg()},
             {(out / "importance_attattr.npy").string(), encode_array(attattr, {"layer", "head"}, ".npy")}};
  o.terminal = terminal.str();
  return o;
}

// Two stages, each an item run (cli/item_run.hpp) that ranks or shards share: the head importances of the first
// --examples texts (in OUT/importance), then, once all of them are there, every text's predictions with the heads
// pruned in each order (in OUT). A shard that finds the first stage incomplete stops after its share of it; run the
// shards again with --resume when all have finished it.
void run_prune(const PruneState& st) {
  if (st.output.empty()) throw InputError("-o DIR is required");
  const AttAttrOptions attattr_options = st.ig.resolve();
  set_threads(st.threads);
  const TextModel tm = open_text_model(st.model);
  const bool talk = !st.quiet && Processes::job().rank() == 0;
  const LabelledTexts texts = load_labelled(tm, st.data, st.data.split, !talk);
  const int L = tm.model->config().num_layers, H = tm.model->config().num_heads;
  const std::size_t examples = std::min(texts.encoded.size(), static_cast<std::size_t>(st.examples));
  std::string header = "index,kind";
  for (int k = 0; k < L * H; ++k) header += ",h" + std::to_string(k);
  const RunTable importance_table{"prune_importance.csv", header + "\n", 2, examples, 1};
  const json common{{"model", tm.path},
                    {"device", st.model.device},
                    {"data", st.data.data.empty() ? "data/sentiment" : st.data.data},
                    {"split", st.data.split},
                    {"limit", st.data.limit},
                    {"texts", texts.encoded.size()},
                    {"importance_examples", examples},
                    {"steps", attattr_options.steps},
                    {"riemann", st.ig.riemann},
                    {"ig_batch", st.ig.batch}};
  RunIdentity importance_id{{"kind", "prune-importance"},
                            {"command", "prune 1/2 attattr"},
                            {"noun", "texts"},
                            {"table", run_table_json(importance_table)},
                            {"when_complete", "run every shard again with --resume to measure the accuracies"}};
  importance_id.update(common);
  const std::string stage1 = (fs::path(st.output) / "importance").string();
  const std::optional<std::string> importance_text =
      run_items({stage1, st.resume, st.shard, st.quiet, true}, importance_id, [&](std::size_t i, std::size_t, const std::string&) {
    const HeadImportance imp = text_head_importance(tm, texts, i, attattr_options);
    std::string rows;
    for (const auto& [kind, a] : {std::pair<const char*, const Array*>{"attattr", &imp.attattr},
                                  std::pair<const char*, const Array*>{"attention", &imp.attention}}) {
      rows += std::to_string(i) + "," + kind;
      for (double v : a->data) rows += "," + format_csv_number(v);
      rows += "\n";
    }
    return std::vector<std::string>{rows};
  });
  if (!importance_text) return;  // a shard before the others: run_items said what to do next
  const HeadImportance sum = summed_importance(*importance_text, importance_table, L, H);
  const auto orders = pruning_orders(sum.attattr, sum.attention, static_cast<std::uint64_t>(st.seed));

  std::string prediction_header = "index,label,order";
  for (std::size_t k = 0; k < pruning_rates().size(); ++k) prediction_header += ",predicted_r" + std::to_string(k);
  const RunTable prediction_table{"prune_per_text.csv", prediction_header + "\n", orders.size(),
                                  texts.encoded.size(), static_cast<std::size_t>(std::max(1, st.batch))};
  json order_names = json::array(), order_lists = json::array();
  for (const auto& [name, order] : orders) order_names.push_back(name), order_lists.push_back(order);
  RunIdentity prune_id{{"kind", "prune"},
                       {"command", "prune 2/2 accuracy"},
                       {"noun", "texts"},
                       {"table", run_table_json(prediction_table)},
                       {"layers", L},
                       {"heads", H},
                       {"seed", st.seed},
                       {"order_names", order_names},
                       {"orders", order_lists},
                       {"importance_attattr", sum.attattr.data},
                       {"importance_attention", sum.attention.data}};
  prune_id.update(common);
  run_items({st.output, st.resume, st.shard, st.quiet}, prune_id,
            [&](std::size_t first, std::size_t count, const std::string&) {
              const auto predicted = pruned_predictions(tm, texts, first, count, orders);
              std::vector<std::string> blocks(count);
              for (std::size_t t = 0; t < count; ++t)
                for (std::size_t o = 0; o < orders.size(); ++o) {
                  blocks[t] += std::to_string(first + t) + "," + std::to_string(texts.examples[first + t].label) +
                               "," + orders[o].first;
                  for (const auto& at_rate : predicted[o]) blocks[t] += "," + std::to_string(at_rate[t]);
                  blocks[t] += "\n";
                }
              return blocks;
            });
}

// ---- tree ----

struct TreeState {
  TextModelOptions model;
  IgCliOptions ig;
  std::string text;
  double threshold = 0.4;
  std::string target = "predicted";
  int label = -1;
  std::string output;
  bool no_svg = false;
  bool quiet = false;
};

void run_tree(const TreeState& st) {
  if (st.output.empty()) throw InputError("-o DIR is required");
  if (!std::isfinite(st.threshold)) throw InputError("--threshold must be a finite number");
  if (st.target == "gold" && st.label < 0) throw InputError("--target gold needs --label");
  const AttAttrOptions ig = st.ig.resolve();
  const TextModel tm = open_text_model(st.model);
  if (st.label >= tm.model->config().num_labels) throw InputError("--label is out of range for this model");
  const EncodedText e = encode_text_or_warn(tm, st.text, st.quiet);
  const TextTree t = text_attribution_tree(tm, e, st.target == "gold" ? st.label : -1, st.threshold, ig);
  const std::string dot = tree_to_dot(t.tree, e.encoding.tokens);
  json j{{"text", e.text},        {"tokens", e.encoding.tokens},      {"predicted", t.predicted},
         {"target", t.target},    {"probabilities", t.probabilities}, {"root", t.tree.root},
         {"edges", json::array()}};
  for (const auto& edge : t.tree.edges)
    j["edges"].push_back(
        {{"parent", edge.parent}, {"child", edge.child}, {"layer", edge.layer}, {"value", edge.value}});
  const fs::path out = st.output;
  std::vector<std::pair<std::string, std::string>> files = {
      {(out / "tree.dot").string(), dot},
      {(out / "tree.json").string(), j.dump(2)},
      {(out / "attattr.npy").string(), encode_array(t.attattr, {"layer", "head", "query", "key"}, ".npy")}};
  if (!st.no_svg) files.emplace_back((out / "tree.svg").string(), render_dot_svg(dot));
  for (const auto& [path, content] : files) write_file_atomic(path, content);
  if (!st.quiet)
    std::cout << "attribution tree: root '" << e.encoding.tokens[static_cast<size_t>(t.tree.root)] << "', "
              << t.tree.edges.size() << " edge(s); outputs written to " << out.string() << std::endl;
}

// ---- triggers ----

struct TriggerState {
  TextModelOptions model;
  DataOptions data;
  IgCliOptions ig;
  int examples = 500;
  double threshold = 0.02;
  bool all = false;
  bool reference = false;
  std::string output;
  bool quiet = false;
};

void run_triggers(const TriggerState& st) {
  if (st.output.empty()) throw InputError("-o DIR is required");
  TriggerSettings settings;
  settings.attattr = st.ig.resolve();
  settings.threshold = st.threshold;
  settings.all = st.all;
  settings.reference = st.reference;
  const TextModel tm = open_text_model(st.model);
  const TextClassifierConfig& c = tm.model->config();
  DataOptions train_data = st.data;
  train_data.limit = st.examples;
  const LabelledTexts train = load_labelled(tm, train_data, "train", st.quiet);
  const LabelledTexts test = load_labelled(tm, st.data, st.data.split, st.quiet);
  ProgressBar bar("mine", "texts", !st.quiet);
  const TriggerResult r = find_triggers(tm, train, test, settings, progress_of(bar));
  bar.finish();

  json result{{"model", tm.path},          {"mined_examples", r.mined}, {"patterns_kept", r.kept},
              {"threshold", st.threshold}, {"triggers", json::array()}, {"accuracy", json::array()}};
  std::ostringstream csv;
  csv << "trigger_label,trigger_tokens,gold_label,texts,accuracy_before,accuracy_after\n";
  for (const LabelTrigger& t : r.triggers) {
    result["triggers"].push_back(
        {{"label", t.label}, {"source_text", t.source_text}, {"tokens", t.tokens}, {"sum", t.sum}});
    for (const TriggerAccuracy& a : t.accuracy) {
      csv << t.label << "," << csv_field(join(t.tokens, " ")) << "," << a.gold_label << "," << a.texts << ","
          << fmt_number(a.before) << "," << fmt_number(a.after) << "\n";
      result["accuracy"].push_back({{"trigger_label", t.label},
                                    {"gold_label", a.gold_label},
                                    {"texts", a.texts},
                                    {"before", a.before},
                                    {"after", a.after}});
      if (!st.quiet)
        std::cout << "trigger of label " << text_label(c, t.label) << " [" << join(t.tokens, " ") << "] on "
                  << text_label(c, a.gold_label) << " texts: accuracy " << fmt_number(a.before) << " -> "
                  << fmt_number(a.after) << " (" << a.texts << " texts)\n";
    }
  }
  const fs::path out = st.output;
  write_file_atomic((out / "triggers.csv").string(), csv.str());
  write_file_atomic((out / "triggers.json").string(), result.dump(2));
  if (!st.quiet) std::cout << "outputs written to " << out.string() << std::endl;
}

// ---- attack words ----

struct AttackWordsState {
  TextModelOptions model;
  DataOptions data;
  IgCliOptions ig;
  std::vector<std::string> methods{"raw", "rollout", "flow", "attattr", "blankout", "random"};
  int max_k = 5;
  std::string replacement = "mask";
  int seed = 0;
  int threads = 0;
  bool resume = false;
  std::string shard;
  std::string output;
  bool quiet = false;
};

std::vector<std::string> word_attack_methods(std::vector<std::string> methods) {
  if (methods.size() == 1 && methods[0] == "all") {
    methods = text_method_names();
    methods.push_back("random");
  }
  return methods;
}

std::string word_attack_header(int max_k) {
  std::string h = "index,label,clean,method";
  for (int k = 1; k <= max_k; ++k) h += ",predicted_k" + std::to_string(k);
  return h + "\n";
}

// The word attack's finisher (cli/item_run.hpp): attack_words.csv, .json and .svg from the per-text table.
RunOutputs word_attack_outputs(const std::string& out_dir, const RunIdentity& id, const std::string& table_text,
                               const std::vector<std::string>& part_dirs, std::optional<int> threads) {
  const fs::path out = out_dir;
  WordAttackSettings settings;
  settings.methods = id.at("methods").get<std::vector<std::string>>();
  settings.max_k = id.at("max_k").get<int>();
  const std::string replacement = id.at("replacement").get<std::string>();
  const RunTable table = run_table_of(id);
  std::vector<WordAttackText> attacked(table.items);
  std::vector<TextExample> examples(table.items);
  std::size_t pos = table.header.size(), line = 1;
  std::vector<std::string> f;
  for (std::size_t i = 0; i < table.items; ++i) {
    for (const std::string& method : settings.methods) {
      const std::string where = (out / table.name).string() + " line " + std::to_string(++line);
      if (!next_csv_record(table_text, pos, f) || f.size() != 4 + static_cast<std::size_t>(settings.max_k) ||
          f[3] != method)
        throw InputError(where + ": not the row of method " + method);
      examples[i].label = static_cast<int>(parse_csv_number(f[1], where));
      attacked[i].clean = static_cast<std::int64_t>(parse_csv_number(f[2], where));
      std::vector<std::int64_t> predicted;
      for (int k = 1; k <= settings.max_k; ++k)
        predicted.push_back(static_cast<std::int64_t>(parse_csv_number(f[3 + static_cast<std::size_t>(k)], where)));
      attacked[i].attacked.push_back(std::move(predicted));
    }
  }
  const WordAttackResult r = word_attack_accuracy(attacked, examples, settings);

  std::ostringstream csv, terminal;
  csv << "method,k,accuracy\n";
  json result{{"run", id},
              {"model", id.at("model")},
              {"texts", table.items},
              {"replacement", replacement},
              {"parts", part_dirs.size() == 1 ? 1 : part_dirs.size() - 1},
              {"accuracy", json::object()}};
  if (threads) result["threads"] = *threads;
  PlotOptions po;
  po.title = "Accuracy with the k top-ranked words replaced by " + replacement;
  po.x_label = "k";
  po.y_label = "accuracy";
  po.x_integer_ticks = true;
  po.y_min = 0.0;
  po.y_max = 1.0;
  Plot plot(po);
  std::vector<double> ks;
  for (int k = 0; k <= settings.max_k; ++k) ks.push_back(k);
  for (const auto& [m, acc] : r.accuracy) {
    for (int k = 0; k <= settings.max_k; ++k)
      csv << m << "," << k << "," << fmt_number(acc[static_cast<size_t>(k)]) << "\n";
    result["accuracy"][m] = acc;
    plot.line(m, ks, acc, {}, true);
    terminal << m << ":";
    for (double a : acc) terminal << " " << fmt_number(a);
    terminal << "\n";
  }
  terminal << "accuracy for k = 0.." << settings.max_k << " above; outputs written to " << out.string() << "\n";
  RunOutputs o;
  o.files = {{(out / "attack_words.csv").string(), csv.str()},
             {(out / "attack_words.json").string(), result.dump(2)},
             {(out / "attack_words.svg").string(), plot.svg()}};
  o.terminal = terminal.str();
  return o;
}

void run_attack_words(const AttackWordsState& st) {
  if (st.output.empty()) throw InputError("-o DIR is required");
  if (st.max_k < 1) throw InputError("--k must be >= 1");
  WordAttackSettings settings;
  settings.attattr = st.ig.resolve();
  settings.methods = word_attack_methods(st.methods);
  settings.max_k = st.max_k;
  settings.seed = static_cast<std::uint64_t>(st.seed);
  set_threads(st.threads);
  const TextModel tm = open_text_model(st.model);
  settings.replacement_id = special_or_vocabulary_id(tm, st.replacement, "--replacement");
  const std::string replacement = tm.tokenizer.vocabulary().token(settings.replacement_id);
  const WordAttack attack(tm, settings);  // checks the method names before any text is read
  const bool talk = !st.quiet && Processes::job().rank() == 0;
  const LabelledTexts texts = load_labelled(tm, st.data, st.data.split, !talk);
  const RunTable table{"attack_words_per_text.csv", word_attack_header(st.max_k), settings.methods.size(),
                       texts.encoded.size(), 1};
  const RunIdentity identity{{"kind", "words"},
                             {"command", "attack words"},
                             {"noun", "texts"},
                             {"table", run_table_json(table)},
                             {"model", tm.path},
                             {"device", st.model.device},
                             {"data", st.data.data.empty() ? "data/sentiment" : st.data.data},
                             {"split", st.data.split},
                             {"limit", st.data.limit},
                             {"methods", settings.methods},
                             {"max_k", settings.max_k},
                             {"replacement", replacement},
                             {"seed", st.seed},
                             {"steps", settings.attattr.steps},
                             {"riemann", st.ig.riemann},
                             {"ig_batch", st.ig.batch}};
  run_items({st.output, st.resume, st.shard, st.quiet}, identity,
            [&](std::size_t i, std::size_t, const std::string&) {
              const WordAttackText a = attack.attack(texts, i);
              std::ostringstream rows;
              for (std::size_t m = 0; m < settings.methods.size(); ++m) {
                rows << i << "," << texts.examples[i].label << "," << a.clean << "," << settings.methods[m];
                for (std::int64_t p : a.attacked[m]) rows << "," << p;
                rows << "\n";
              }
              return std::vector<std::string>{rows.str()};
            });
}

}  // namespace

void add_text_commands(CLI::App& app, Action& action) {
  register_run_kind("words", word_attack_outputs);
  register_run_kind("prune-importance", [](const std::string&, const RunIdentity&, const std::string&,
                                           const std::vector<std::string>&, std::optional<int>) { return RunOutputs{}; });
  register_run_kind("prune", prune_outputs);
  auto pr = std::make_shared<PruneState>();
  CLI::App* prune = app.add_subcommand(
      "prune",
      "AttAttr head pruning (Hao et al. 2021): head importance from integrated gradients on attention over N texts, "
      "then accuracy as 0%, 10%, ..., 100% of the heads are masked (after the softmax), least important first, "
      "ordered by attribution, by raw attention and at random. Writes prune.csv, prune.json, prune.svg, "
      "importance_attattr.npy and the per-text tables (importance/prune_importance.csv, prune_per_text.csv)");
  add_text_model_options(prune, pr->model);
  add_data_options(prune, pr->data, "test", "to score and evaluate");
  add_ig_options(prune, pr->ig, 20);
  prune
      ->add_option("--examples", pr->examples,
                   "Texts whose attribution ranks the heads (default 200, as the "
                   "reference)")
      ->check(CLI::PositiveNumber);
  prune->add_option("--seed", pr->seed, "Seed of the random order (default 0)");
  prune->add_option("--batch", pr->batch, "Texts per padded forward pass when measuring accuracy (default 64)")
      ->check(CLI::PositiveNumber);
  add_run_options(prune, pr->threads, pr->resume, pr->shard, "texts",
                  "first their head importances (DIR/importance/shard-K-of-N), then, once every shard's are there, "
                  "their accuracies (DIR/shard-K-of-N): run the shards again with --resume after all have run once");
  prune->add_option("-o,--output", pr->output, "Output folder")->required();
  prune->add_flag("-q,--quiet", pr->quiet, "No progress bar or summary lines");
  prune->callback([pr, &action] { action = [pr] { run_prune(*pr); }; });

  auto tr = std::make_shared<TreeState>();
  CLI::App* tree = app.add_subcommand(
      "tree",
      "AttAttr attribution tree of one text (spec 5: threshold 0.4, any depth): tree.dot (Graphviz), tree.svg "
      "(rendered by dot), tree.json and the attribution tensor attattr.npy");
  add_text_model_options(tree, tr->model);
  add_ig_options(tree, tr->ig, 20);
  tree->add_option("text", tr->text, "The text")->required();
  tree->add_option("--threshold", tr->threshold, "Edge threshold tau on normalised attribution (default 0.4)");
  tree->add_option("--target", tr->target, "predicted (default) or gold (--label)")
      ->check(CLI::IsMember({"predicted", "gold"}));
  tree->add_option("--label", tr->label, "Gold label, for --target gold")->check(CLI::NonNegativeNumber);
  tree->add_flag("--no-svg", tr->no_svg, "Write only the DOT source (no Graphviz needed)");
  tree->add_option("-o,--output", tr->output, "Output folder")->required();
  tree->add_flag("-q,--quiet", tr->quiet, "No summary line");
  tree->callback([tr, &action] { action = [tr] { run_tree(*tr); }; });

  auto tg = std::make_shared<TriggerState>();
  CLI::App* triggers = app.add_subcommand(
      "triggers",
      "AttAttr adversarial triggers: mine each training text's strongest attribution pattern, keep the strong ones, "
      "insert each label's strongest pattern's tokens into the held-out texts and report accuracy per gold label "
      "before and after. Writes triggers.csv and triggers.json");
  add_text_model_options(triggers, tg->model);
  add_data_options(triggers, tg->data, "test", "to attack");
  add_ig_options(triggers, tg->ig, 20);
  triggers->add_option("--examples", tg->examples, "Training texts to mine (default 500, as the reference)")
      ->check(CLI::PositiveNumber);
  triggers->add_option("--threshold", tg->threshold, "Keep patterns until the first whose sum is below (0.02)");
  triggers->add_flag("--all", tg->all, "Use both token pairs of a pattern (the reference's --if_all)");
  triggers->add_flag("--reference", tg->reference, "Also drop the last pattern when none falls below (the code)");
  triggers->add_option("-o,--output", tg->output, "Output folder")->required();
  triggers->add_flag("-q,--quiet", tg->quiet, "No progress bar or summary lines");
  triggers->callback([tg, &action] { action = [tg] { run_triggers(*tg); }; });

  CLI::App* attack = app.add_subcommand("attack", "Attacks that test whether explanations point at what matters");
  attack->require_subcommand(1);
  add_attack_fgsm_command(*attack, action);
  auto aw = std::make_shared<AttackWordsState>();
  CLI::App* words = attack->add_subcommand(
      "words",
      "Word-substitution attack on a text classifier (the seeds' SST-2 attack): for k = 1..K replace the k tokens a "
      "method ranks highest (for the predicted class) by the mask token, the unknown token or a word, and report "
      "accuracy vs k per method "
      "and for random tokens. Writes attack_words.csv, .json and .svg, and the per-text attack_words_per_text.csv");
  add_text_model_options(words, aw->model);
  add_data_options(words, aw->data, "test", "to attack");
  add_ig_options(words, aw->ig, 20);
  words
      ->add_option("--methods", aw->methods,
                   "Methods ranking the words, comma-separated, or all (default raw,rollout,flow,attattr,blankout,"
                   "random)")
      ->delimiter(',');
  words->add_option("--k", aw->max_k, "Largest number of replaced words (default 5)")->check(CLI::PositiveNumber);
  words->add_option("--replacement", aw->replacement,
                    "mask (the tokenizer's: [MASK], <mask>), unk, or any vocabulary token (default mask)");
  words->add_option("--seed", aw->seed, "Seed of the random baseline (default 0)");
  add_run_options(words, aw->threads, aw->resume, aw->shard, "texts");
  words->add_option("-o,--output", aw->output, "Output folder")->required();
  words->add_flag("-q,--quiet", aw->quiet, "No progress bar or summary lines");
  words->callback([aw, &action] { action = [aw] { run_attack_words(*aw); }; });
}

LabelledTexts load_labelled_split(const TextModel& model, const std::string& data, const std::string& split, int limit,
                                  bool quiet) {
  DataOptions o;
  o.data = data;
  o.split = split;
  o.limit = limit;
  return load_labelled(model, o, split, quiet);
}

}  // namespace attnlens::cli
