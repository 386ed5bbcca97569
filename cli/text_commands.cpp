// Text subcommands on a BERT classifier: `explain --text`, and AttAttr's applications `prune`, `tree`, `triggers`
// and the word-substitution attack `attack words`.
#include "cli/text_commands.hpp"

#include "cli/model_inputs.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>

#include "core/attribution_tree.hpp"
#include "core/triggers.hpp"
#include "explain/text_methods.hpp"
#include "io/array_writer.hpp"
#include "io/atomic_file.hpp"
#include "io/text_dataset.hpp"
#include "models/checkpoint.hpp"
#include "models/arrays.hpp"
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
  if (found.empty()) throw InputError("no --model given and the bundled model data/models/sentiment-bert was not found");
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

// Probability of each class, [C], for one-row logits.
std::vector<double> probabilities(const torch::Tensor& logits) {
  const auto p = torch::softmax(logits, -1).reshape({-1}).to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
}

// Predicted classes of many encoded texts, in padded batches; `mask` prunes heads.
std::vector<std::int64_t> predict_all(const TextModel& m, const std::vector<std::vector<std::int64_t>>& ids,
                                      const torch::Tensor& head_mask = {}, int batch = 64) {
  std::vector<std::int64_t> out;
  BertIntervention iv;
  iv.head_mask = head_mask;
  for (size_t begin = 0; begin < ids.size(); begin += static_cast<size_t>(batch)) {
    const size_t end = std::min(ids.size(), begin + static_cast<size_t>(batch));
    const std::vector<std::vector<std::int64_t>> rows(ids.begin() + static_cast<std::ptrdiff_t>(begin),
                                                     ids.begin() + static_cast<std::ptrdiff_t>(end));
    const TextBatch b = make_text_batch(rows, {}, m.tokenizer.pad_id());
    const auto pred = m.model.forward(b, iv).argmax(1).to(torch::kCPU);
    for (std::int64_t i = 0; i < pred.size(0); ++i) out.push_back(pred[i].item<std::int64_t>());
  }
  return out;
}

double accuracy_of(const std::vector<std::int64_t>& predicted, const std::vector<TextExample>& data) {
  size_t right = 0;
  for (size_t i = 0; i < data.size(); ++i) right += predicted[i] == data[i].label;
  return data.empty() ? 0.0 : static_cast<double>(right) / static_cast<double>(data.size());
}

RiemannSum parse_riemann(const std::string& s) {
  if (s == "right") return RiemannSum::Right;
  if (s == "left") return RiemannSum::Left;
  throw InputError("--riemann must be right (the paper) or left (the reference code), got '" + s + "'");
}

void check_labels(const std::vector<TextExample>& data, const BertConfig& c, const std::string& path) {
  for (const auto& e : data) {
    if (e.label < 0) throw InputError(path + ": text " + std::to_string(e.index) + " has no gold label");
    if (e.label >= c.num_labels)
      throw InputError(path + ": label " + std::to_string(e.label) + " of text " + std::to_string(e.index) +
                       " is out of range: the model has " + std::to_string(c.num_labels) + " classes");
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Model and texts
// ---------------------------------------------------------------------------------------------------------------

void add_text_model_options(CLI::App* app, TextModelOptions& o) {
  app->add_option("--model", o.model,
                  "BERT classifier: folder with model.safetensors (Hugging Face BertForSequenceClassification names), "
                  "config.json and vocab.txt (default: the bundled data/models/sentiment-bert)");
  app->add_option("--device", o.device, "cpu (default) or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app->add_option("--max-length", o.max_length,
                  "Tokens per text including [CLS] and [SEP]; longer texts are truncated with a warning "
                  "(default: the model's position count)")
      ->check(CLI::NonNegativeNumber);
  app->add_flag("--cased", o.cased, "Keep case and accents (bert-*-cased); default: config.json's do_lower_case");
  app->add_flag("--lowercase", o.lowercase, "Lowercase and strip accents (bert-*-uncased)");
}

TextModel load_text_model(const TextModelOptions& o) {
  if (o.cased && o.lowercase) throw InputError("--cased and --lowercase exclude each other");
  const std::string path = o.model.empty() ? bundled_text_model() : o.model;
  const torch::Device device = o.device == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  BertClassifier model = BertClassifier::load(path, device);
  const fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
  if (!fs::exists(dir / "vocab.txt")) throw InputError("no vocab.txt beside the model in " + dir.string());
  Vocabulary vocab = Vocabulary::load((dir / "vocab.txt").string());
  if (vocab.size() != model.config().vocab_size)
    throw InputError((dir / "vocab.txt").string() + " has " + std::to_string(vocab.size()) +
                     " tokens but the model's word embeddings have " + std::to_string(model.config().vocab_size) +
                     " rows: they do not belong together");
  TokenizerOptions t;
  t.lowercase = o.cased ? false : o.lowercase ? true : model.config().do_lower_case;
  t.max_length = o.max_length > 0 ? std::min(o.max_length, model.config().max_positions) : model.config().max_positions;
  if (t.max_length < 3) throw InputError("--max-length must be at least 3");
  WordPieceTokenizer tokenizer(std::move(vocab), t);
  return TextModel{path, std::move(model), std::move(tokenizer)};
}

EncodedText encode_text(const TextModel& m, const std::string& text, bool quiet) {
  EncodedText e;
  e.text = text;
  e.encoding = m.tokenizer.encode(text);
  if (e.encoding.ids.size() <= 2) throw InputError("text has no tokens: '" + text + "'");
  if (e.encoding.truncated && !quiet)
    std::cerr << "attnlens: warning: text truncated to " << e.encoding.ids.size() << " tokens: '"
              << text.substr(0, 60) << (text.size() > 60 ? "...'" : "'") << std::endl;
  e.batch = make_text_batch({e.encoding.ids}, {e.encoding.token_type_ids}, 0);
  return e;
}

std::string text_label(const BertConfig& c, std::int64_t k) {
  if (k >= 0 && k < static_cast<std::int64_t>(c.labels.size())) return c.labels[static_cast<size_t>(k)];
  return std::to_string(k);
}

// ---------------------------------------------------------------------------------------------------------------
// explain --text
// ---------------------------------------------------------------------------------------------------------------

const std::vector<std::string>& text_method_names() {
  static const std::vector<std::string> names = {"raw",    "rollout", "grad-rollout", "flow",           "flow-metzger",
                                                 "chefer", "attattr", "blankout",     "input-x-gradient"};
  return names;
}

namespace {

bool is_model_method(const std::string& name) {
  return name == "attattr" || name == "blankout" || name == "input-x-gradient";
}

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

namespace {

// Token scores of one text by several methods, sharing one capture (and one backward pass) among the attention
// methods: what explain --text and attack words both need.
class TextScorer {
 public:
  TextScorer(const TextModel& tm, const std::vector<std::string>& methods, MethodSettings settings,
             AttAttrOptions ig, std::int64_t blank_id)
      : tm_(tm), methods_(methods), ig_(ig), blank_id_(blank_id) {
    for (const auto& m : methods) {
      if (m == "random") continue;
      if (m == "heads") throw InputError("method heads is for images; text methods: " + join(text_method_names()));
      if (std::find(text_method_names().begin(), text_method_names().end(), m) == text_method_names().end())
        throw InputError("unknown text method '" + m + "' (known: " + join(text_method_names()) + ")");
      if (is_model_method(m)) continue;
      graph_.push_back(make_method(m, settings));
      gradients_ |= graph_.back()->needs_gradients();
    }
  }

  struct Scores {
    std::vector<double> probabilities;  ///< of every class, from the capture the attention methods share
    std::int64_t target = -1;           ///< the class explained (the predicted one when score() got -1)
    std::map<std::string, std::vector<double>> by_method;
    Array attention;  ///< [L,H,T,T]
    Array attattr;    ///< [L,H,T,T] when attattr was asked for
  };

  /// Scores for class `target`; a negative target explains the predicted class (known after the one capture).
  Scores score(const EncodedText& e, std::int64_t target, std::map<std::string, double>* seconds = nullptr) const {
    Scores out;
    const auto t0 = std::chrono::steady_clock::now();
    AttentionRecord record;
    record.layout = TokenLayout{0, 1, static_cast<int>(e.batch.length())};  // every token, [CLS]/[SEP] included
    const BertCapture cap = gradients_ ? tm_.model.capture(e.batch, {target}, TargetKind::Logit)
                                       : tm_.model.capture(e.batch);
    record.attention = image_layers(cap.attention, 0);
    if (gradients_) {
      record.attention_grad = image_layers(cap.attention_grad, 0);
      record.scores_grad = image_layers(cap.scores_grad, 0);
    }
    out.probabilities = probabilities(cap.logits);
    out.target = target >= 0 ? target
                             : std::max_element(out.probabilities.begin(), out.probabilities.end()) -
                                   out.probabilities.begin();
    target = out.target;
    if (seconds) (*seconds)["forward_backward"] += seconds_since(t0);
    for (const auto& name : methods_) {
      if (name == "random") continue;
      const auto t1 = std::chrono::steady_clock::now();
      std::vector<double>& scores = out.by_method[name];
      if (name == "attattr") {
        out.attattr = attattr(tm_.model, e.batch, target, ig_);
        scores = attattr_token_scores(out.attattr);
      } else if (name == "blankout") {
        scores = token_blankout(tm_.model, e.batch, target, blank_id_);
      } else if (name == "input-x-gradient") {
        scores = input_x_gradient(tm_.model, e.batch, target);
      } else {
        for (const auto& m : graph_)
          if (m->name() == name) scores = m->explain(record).data;
      }
      if (seconds) (*seconds)[name] += seconds_since(t1);
    }
    out.attention = std::move(record.attention);
    return out;
  }

 private:
  const TextModel& tm_;
  std::vector<std::string> methods_;
  std::vector<std::unique_ptr<ExplanationMethod>> graph_;
  AttAttrOptions ig_;
  std::int64_t blank_id_;
  bool gradients_ = false;
};

std::int64_t token_id(const TextModel& tm, const std::string& token, const std::string& option) {
  const auto id = tm.tokenizer.vocabulary().find(token);
  if (!id) throw InputError(option + " '" + token + "' is not in the vocabulary");
  return *id;
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

  const TextModel tm = load_text_model(o.model);
  const BertConfig& c = tm.model.config();
  if (category >= c.num_labels)
    throw InputError("--category " + std::to_string(category) + " is out of range: the model has " +
                     std::to_string(c.num_labels) + " classes");
  if (o.label >= c.num_labels) throw InputError("--label is out of range for this model");
  const bool blank = std::find(methods.begin(), methods.end(), "blankout") != methods.end();
  const TextScorer scorer(tm, methods, s, ig, blank ? token_id(tm, o.blank_token, "--blank-token") : -1);
  std::vector<EncodedText> encoded;
  for (const auto& t : texts) encoded.push_back(encode_text(tm, t, quiet));

  const fs::path out = output;
  std::vector<std::pair<std::string, std::string>> files;  // written only when every text succeeded
  std::ostringstream csv;
  csv << "text,method,target,label,token_index,token,score\n";
  json summary{{"model", tm.path}, {"methods", methods}, {"texts", json::array()}};
  HtmlReport page("attnlens explain: text");
  page.paragraph("Model: " + tm.path + ". Methods: " + join(methods) +
                 ". Red: the token supported the explained class; blue: it spoke against it.");
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
    json entry{{"text", e.text},         {"tokens", e.encoding.tokens}, {"ids", e.encoding.ids},
               {"predicted", predicted}, {"target", target},            {"label", text_label(c, target)},
               {"probabilities", probs}, {"truncated", e.encoding.truncated}, {"scores", json::object()}};
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
    const std::string snippet = highlight_tokens_html(e.encoding.tokens, rows, methods);
    files.emplace_back((out / (stem + "_tokens.html")).string(), snippet);
    entry["outputs"]["html"] = stem + "_tokens.html";
    summary["texts"].push_back(entry);
    page.section("Text " + std::to_string(i) + ": predicted " + text_label(c, predicted) + " (p = " +
                 TableCell::format_real(probs[static_cast<size_t>(predicted)]) + "), explained: " +
                 text_label(c, target));
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
  app->add_option("--split", o.split, "Which texts " + what + ": test (i % 5 == 4), train or all (default " +
                                          default_split + ")")
      ->check(CLI::IsMember({"all", "train", "test"}));
  app->add_option("--limit", o.limit, "Use only the first N texts of the split (default all)")
      ->check(CLI::NonNegativeNumber);
}

struct LabelledTexts {
  std::vector<TextExample> examples;
  std::vector<EncodedText> encoded;
  std::vector<std::vector<std::int64_t>> ids;
  int truncated = 0;
};

LabelledTexts load_labelled(const TextModel& tm, const DataOptions& o, const std::string& split, bool quiet) {
  const std::string path = o.data.empty() ? bundled_text_data() : o.data;
  LabelledTexts t;
  t.examples = load_text_dataset(path, parse_text_split(split));
  if (o.limit > 0 && static_cast<size_t>(o.limit) < t.examples.size()) t.examples.resize(static_cast<size_t>(o.limit));
  check_labels(t.examples, tm.model.config(), path);
  for (const auto& e : t.examples) {
    t.encoded.push_back(encode_text(tm, e.text, true));
    t.truncated += t.encoded.back().encoding.truncated;
    t.ids.push_back(t.encoded.back().encoding.ids);
  }
  if (t.truncated > 0 && !quiet)
    std::cerr << "attnlens: warning: " << t.truncated << " text(s) truncated to the model's "
              << tm.tokenizer.options().max_length << " tokens" << std::endl;
  return t;
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
  std::string output;
  bool quiet = false;
};

void run_prune(const PruneState& st) {
  if (st.output.empty()) throw InputError("-o DIR is required");
  const AttAttrOptions ig = st.ig.resolve();
  const TextModel tm = load_text_model(st.model);
  const BertConfig& c = tm.model.config();
  const LabelledTexts texts = load_labelled(tm, st.data, st.data.split, st.quiet);
  const int L = c.num_layers, H = c.num_heads, heads = L * H;

  // Head importance (spec 5): sum over examples of each head's largest attribution, target = the gold label as
  // prune_head_with_attr does; the raw-attention baseline sums each head's largest attention weight instead.
  const size_t n_importance = std::min(texts.encoded.size(), static_cast<size_t>(st.examples));
  Array by_attr({L, H}), by_attention({L, H});
  ProgressBar bar("attattr", "texts", !st.quiet);
  for (size_t i = 0; i < n_importance; ++i) {
    const auto& e = texts.encoded[i];
    const Array attr = attattr(tm.model, e.batch, texts.examples[i].label, ig);
    const Array imp = attattr_head_importance(attr);
    const Array att = attattr_head_importance(image_layers(tm.model.capture(e.batch).attention, 0));
    for (int k = 0; k < heads; ++k) by_attr.data[k] += imp.data[k], by_attention.data[k] += att.data[k];
    bar.update(static_cast<long long>(i + 1), static_cast<long long>(n_importance));
  }
  bar.finish();

  auto ascending = [&](const Array& score) {
    std::vector<int> order(static_cast<size_t>(heads));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return score.data[a] < score.data[b]; });
    return order;
  };
  std::vector<int> random_order(static_cast<size_t>(heads));
  std::iota(random_order.begin(), random_order.end(), 0);
  std::mt19937_64 rng(static_cast<std::uint64_t>(st.seed));
  std::shuffle(random_order.begin(), random_order.end(), rng);
  const std::vector<std::pair<std::string, std::vector<int>>> orders = {
      {"attattr", ascending(by_attr)}, {"attention", ascending(by_attention)}, {"random", random_order}};

  std::ostringstream csv;
  csv << "rate,heads_pruned";
  for (const auto& [name, order] : orders) csv << ",accuracy_" << name;
  csv << "\n";
  json result{{"model", tm.path}, {"texts", texts.examples.size()}, {"importance_examples", n_importance},
              {"steps", ig.steps}, {"riemann", st.ig.riemann}, {"rates", json::array()}};
  std::map<std::string, std::vector<double>> curves;
  std::vector<double> rates;
  ProgressBar eval_bar("prune", "evaluations", !st.quiet);
  for (int step = 0; step <= 10; ++step) {
    const double rate = step / 10.0;
    const int pruned = static_cast<int>(std::floor(rate * heads + 1e-9));
    rates.push_back(rate);
    csv << rate << "," << pruned;
    json row{{"rate", rate}, {"heads_pruned", pruned}};
    for (const auto& [name, order] : orders) {
      auto mask = torch::ones({L, H});
      for (int k = 0; k < pruned; ++k) mask[order[static_cast<size_t>(k)] / H][order[static_cast<size_t>(k)] % H] = 0.0;
      const double acc = accuracy_of(predict_all(tm, texts.ids, mask), texts.examples);
      curves[name].push_back(acc);
      csv << "," << fmt_number(acc);
      row["accuracy_" + name] = acc;
      eval_bar.update(step * 3 + static_cast<long long>(curves.size()), 33);
    }
    csv << "\n";
    result["rates"].push_back(row);
  }
  eval_bar.finish();
  result["importance_attattr"] = by_attr.data;
  result["importance_attention"] = by_attention.data;
  PlotOptions po;
  po.title = "Accuracy as heads are pruned (" + std::to_string(texts.examples.size()) + " texts)";
  po.x_label = "share of heads pruned";
  po.y_label = "accuracy";
  po.y_min = 0.0;
  po.y_max = 1.0;
  Plot plot(po);
  for (const auto& [name, order] : orders) plot.line(name, rates, curves[name], {}, true);
  const fs::path out = st.output;
  const std::vector<std::pair<std::string, std::string>> files = {
      {(out / "prune.csv").string(), csv.str()},
      {(out / "prune.json").string(), result.dump(2)},
      {(out / "prune.svg").string(), plot.svg()},
      {(out / "importance_attattr.npy").string(), encode_array(by_attr, {"layer", "head"}, ".npy")}};
  for (const auto& [path, content] : files) write_file_atomic(path, content);
  if (!st.quiet) {
    std::cout << "accuracy with 0%..100% of the " << heads << " heads pruned (attattr / attention / random):\n";
    for (size_t i = 0; i < rates.size(); ++i)
      std::cout << "  " << static_cast<int>(std::lround(rates[i] * 100)) << "%: " << fmt_number(curves["attattr"][i])
                << " / " << fmt_number(curves["attention"][i]) << " / " << fmt_number(curves["random"][i]) << "\n";
    std::cout << "outputs written to " << out.string() << std::endl;
  }
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
  const TextModel tm = load_text_model(st.model);
  if (st.label >= tm.model.config().num_labels) throw InputError("--label is out of range for this model");
  const EncodedText e = encode_text(tm, st.text, st.quiet);
  const auto probs = probabilities(tm.model.forward(e.batch));
  const std::int64_t predicted = std::max_element(probs.begin(), probs.end()) - probs.begin();
  const std::int64_t target = st.target == "gold" ? st.label : predicted;
  const Array attr = attattr(tm.model, e.batch, target, ig);
  // S_l = sum over heads of layer l's attribution.
  const std::int64_t L = attr.shape[0], H = attr.shape[1], T = attr.shape[2];
  Array per_layer({L, T, T});
  for (std::int64_t l = 0; l < L; ++l)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t k = 0; k < T * T; ++k) per_layer.data[l * T * T + k] += attr.data[(l * H + h) * T * T + k];
  const AttributionTree tree = attribution_tree(per_layer, st.threshold);
  const std::string dot = tree_to_dot(tree, e.encoding.tokens);
  json j{{"text", e.text}, {"tokens", e.encoding.tokens}, {"predicted", predicted}, {"target", target},
         {"probabilities", probs}, {"root", tree.root}, {"edges", json::array()}};
  for (const auto& edge : tree.edges)
    j["edges"].push_back({{"parent", edge.parent}, {"child", edge.child}, {"layer", edge.layer}, {"value", edge.value}});
  const fs::path out = st.output;
  std::vector<std::pair<std::string, std::string>> files = {
      {(out / "tree.dot").string(), dot},
      {(out / "tree.json").string(), j.dump(2)},
      {(out / "attattr.npy").string(), encode_array(attr, {"layer", "head", "query", "key"}, ".npy")}};
  if (!st.no_svg) files.emplace_back((out / "tree.svg").string(), render_dot_svg(dot));
  for (const auto& [path, content] : files) write_file_atomic(path, content);
  if (!st.quiet)
    std::cout << "attribution tree: root '" << e.encoding.tokens[static_cast<size_t>(tree.root)] << "', "
              << tree.edges.size() << " edge(s); outputs written to " << out.string() << std::endl;
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
  const AttAttrOptions ig = st.ig.resolve();
  const TextModel tm = load_text_model(st.model);
  const BertConfig& c = tm.model.config();
  DataOptions train_data = st.data;
  train_data.limit = st.examples;
  const LabelledTexts train = load_labelled(tm, train_data, "train", st.quiet);
  DataOptions test_data = st.data;
  const LabelledTexts test = load_labelled(tm, test_data, st.data.split, st.quiet);

  // (1) one pattern per training example, with the predicted class as AttAttr's target (run_adver_connection).
  std::vector<TriggerPattern> patterns;
  ProgressBar bar("mine", "texts", !st.quiet);
  for (size_t i = 0; i < train.encoded.size(); ++i) {
    const auto& e = train.encoded[i];
    const auto pred = tm.model.forward(e.batch).argmax(1).item<std::int64_t>();
    patterns.push_back(mine_pattern(attattr(tm.model, e.batch, pred, ig)));
    bar.update(static_cast<long long>(i + 1), static_cast<long long>(train.encoded.size()));
  }
  bar.finish();
  // (2) the strong patterns, strongest first.
  const auto kept = select_patterns(patterns, st.threshold, st.reference);
  // (3) the strongest kept pattern of each gold label is that label's trigger; every trigger is inserted into the
  // held-out texts of every label (the matrix covers both readings of "non-targeted": a label's own pattern, and the
  // other label's).
  const int C = c.num_labels;
  std::vector<int> source_of(static_cast<size_t>(C), -1);
  for (size_t k : kept) {
    const int g = train.examples[k].label;
    if (source_of[static_cast<size_t>(g)] < 0) source_of[static_cast<size_t>(g)] = static_cast<int>(k);
  }
  auto sep_of = [&](const std::vector<std::int64_t>& ids) {
    return static_cast<int>(std::find(ids.begin(), ids.end(), tm.tokenizer.sep_id()) - ids.begin());
  };
  const auto before = predict_all(tm, test.ids);
  json result{{"model", tm.path}, {"mined_examples", train.encoded.size()}, {"patterns_kept", kept.size()},
              {"threshold", st.threshold}, {"triggers", json::array()}, {"accuracy", json::array()}};
  std::ostringstream csv;
  csv << "trigger_label,trigger_tokens,gold_label,texts,accuracy_before,accuracy_after\n";
  for (int source = 0; source < C; ++source) {
    const int k = source_of[static_cast<size_t>(source)];
    if (k < 0) continue;
    const auto& src = train.encoded[static_cast<size_t>(k)].encoding;
    const auto triggers = trigger_tokens(patterns[static_cast<size_t>(k)], src.ids, sep_of(src.ids), st.all);
    std::vector<std::string> words;
    for (const auto& t : triggers) words.push_back(tm.tokenizer.vocabulary().token(t.token));
    result["triggers"].push_back({{"label", source}, {"source_text", train.examples[static_cast<size_t>(k)].text},
                                  {"tokens", words}, {"sum", patterns[static_cast<size_t>(k)].sum()}});
    std::vector<std::vector<std::int64_t>> attacked;
    for (const auto& ids : test.ids)
      attacked.push_back(insert_triggers(triggers, ids, sep_of(ids), tm.tokenizer.options().max_length).ids);
    const auto after = predict_all(tm, attacked);
    for (int gold = 0; gold < C; ++gold) {
      size_t n = 0, right_before = 0, right_after = 0;
      for (size_t i = 0; i < test.examples.size(); ++i) {
        if (test.examples[i].label != gold) continue;
        ++n;
        right_before += before[i] == gold;
        right_after += after[i] == gold;
      }
      const double acc_before = n ? static_cast<double>(right_before) / n : 0.0;
      const double acc_after = n ? static_cast<double>(right_after) / n : 0.0;
      csv << source << "," << csv_field(join(words, " ")) << "," << gold << "," << n << "," << fmt_number(acc_before)
          << "," << fmt_number(acc_after) << "\n";
      result["accuracy"].push_back({{"trigger_label", source}, {"gold_label", gold}, {"texts", n},
                                    {"before", acc_before}, {"after", acc_after}});
      if (!st.quiet)
        std::cout << "trigger of label " << text_label(c, source) << " [" << join(words, " ") << "] on "
                  << text_label(c, gold) << " texts: accuracy " << fmt_number(acc_before) << " -> "
                  << fmt_number(acc_after) << " (" << n << " texts)\n";
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
  std::string replacement = "[MASK]";
  int seed = 0;
  std::string output;
  bool quiet = false;
};

void run_attack_words(const AttackWordsState& st) {
  if (st.output.empty()) throw InputError("-o DIR is required");
  if (st.max_k < 1) throw InputError("--k must be >= 1");
  const AttAttrOptions ig = st.ig.resolve();
  std::vector<std::string> methods = st.methods;
  if (methods.size() == 1 && methods[0] == "all") {
    methods = text_method_names();
    methods.push_back("random");
  }
  const TextModel tm = load_text_model(st.model);
  const std::int64_t replacement = st.replacement == "mask" ? tm.tokenizer.mask_id()
                                   : st.replacement == "unk" ? tm.tokenizer.unk_id()
                                                             : token_id(tm, st.replacement, "--replacement");
  const bool blank = std::find(methods.begin(), methods.end(), "blankout") != methods.end();
  const TextScorer scorer(tm, methods, MethodSettings{}, ig, blank ? tm.tokenizer.mask_id() : -1);
  const LabelledTexts texts = load_labelled(tm, st.data, st.data.split, st.quiet);
  std::mt19937_64 rng(static_cast<std::uint64_t>(st.seed));
  // correct[method][k]: texts still classified correctly with the top-k words replaced (k = 0: untouched).
  std::map<std::string, std::vector<double>> correct;
  for (const auto& m : methods) correct[m].assign(static_cast<size_t>(st.max_k) + 1, 0.0);
  const auto clean = predict_all(tm, texts.ids);
  ProgressBar bar("attack", "texts", !st.quiet);
  for (size_t i = 0; i < texts.encoded.size(); ++i) {
    const auto& e = texts.encoded[i];
    const auto& ids = e.encoding.ids;
    const std::int64_t predicted = clean[i];
    const auto scores = scorer.score(e, predicted);
    // Candidate positions: the words, not [CLS]/[SEP].
    std::vector<int> positions;
    for (size_t t = 0; t < ids.size(); ++t)
      if (ids[t] != tm.tokenizer.cls_id() && ids[t] != tm.tokenizer.sep_id()) positions.push_back(static_cast<int>(t));
    for (const auto& m : methods) {
      std::vector<int> ranked = positions;
      if (m == "random") {
        std::shuffle(ranked.begin(), ranked.end(), rng);
      } else {
        const auto& s = scores.by_method.at(m);
        std::stable_sort(ranked.begin(), ranked.end(), [&](int a, int b) { return s[a] > s[b]; });
      }
      std::vector<std::vector<std::int64_t>> variants;
      std::vector<std::int64_t> v = ids;
      for (int k = 1; k <= st.max_k; ++k) {
        if (static_cast<size_t>(k) <= ranked.size()) v[static_cast<size_t>(ranked[static_cast<size_t>(k - 1)])] = replacement;
        variants.push_back(v);
      }
      const auto pred = predict_all(tm, variants);
      for (int k = 1; k <= st.max_k; ++k) correct[m][static_cast<size_t>(k)] += pred[static_cast<size_t>(k - 1)] == texts.examples[i].label;
    }
    bar.update(static_cast<long long>(i + 1), static_cast<long long>(texts.encoded.size()));
  }
  bar.finish();
  const double n = static_cast<double>(texts.examples.size());
  std::ostringstream csv;
  csv << "method,k,accuracy\n";
  json result{{"model", tm.path}, {"texts", texts.examples.size()}, {"replacement", st.replacement},
              {"accuracy", json::object()}};
  PlotOptions po;
  po.title = "Accuracy with the k top-ranked words replaced by " + st.replacement;
  po.x_label = "k";
  po.y_label = "accuracy";
  po.x_integer_ticks = true;
  po.y_min = 0.0;
  po.y_max = 1.0;
  Plot plot(po);
  std::vector<double> ks;
  for (int k = 0; k <= st.max_k; ++k) ks.push_back(k);
  for (const auto& m : methods) {
    std::vector<double> acc{accuracy_of(clean, texts.examples)};  // k = 0: the texts as they are
    for (int k = 0; k <= st.max_k; ++k) {
      if (k > 0) acc.push_back(correct[m][static_cast<size_t>(k)] / n);
      csv << m << "," << k << "," << fmt_number(acc.back()) << "\n";
    }
    result["accuracy"][m] = acc;
    plot.line(m, ks, acc, {}, true);
    if (!st.quiet) {
      std::cout << m << ":";
      for (double a : acc) std::cout << " " << fmt_number(a);
      std::cout << "\n";
    }
  }
  const fs::path out = st.output;
  write_file_atomic((out / "attack_words.csv").string(), csv.str());
  write_file_atomic((out / "attack_words.json").string(), result.dump(2));
  write_file_atomic((out / "attack_words.svg").string(), plot.svg());
  if (!st.quiet) std::cout << "accuracy for k = 0.." << st.max_k << " above; outputs written to " << out.string() << std::endl;
}

}  // namespace

void add_text_commands(CLI::App& app, Action& action) {
  auto pr = std::make_shared<PruneState>();
  CLI::App* prune = app.add_subcommand(
      "prune",
      "AttAttr head pruning (Hao et al. 2021): head importance from integrated gradients on attention over N texts, "
      "then accuracy as 0%, 10%, ..., 100% of the heads are masked (after the softmax), least important first, "
      "ordered by attribution, by raw attention and at random. Writes prune.csv, prune.json, prune.svg");
  add_text_model_options(prune, pr->model);
  add_data_options(prune, pr->data, "test", "to score and evaluate");
  add_ig_options(prune, pr->ig, 20);
  prune->add_option("--examples", pr->examples, "Texts whose attribution ranks the heads (default 200, as the "
                                                "reference)")
      ->check(CLI::PositiveNumber);
  prune->add_option("--seed", pr->seed, "Seed of the random order (default 0)");
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
      "method ranks highest (for the predicted class) by [MASK], [UNK] or a word, and report accuracy vs k per method "
      "and for random tokens. Writes attack_words.csv, .json and .svg");
  add_text_model_options(words, aw->model);
  add_data_options(words, aw->data, "test", "to attack");
  add_ig_options(words, aw->ig, 20);
  words->add_option("--methods", aw->methods,
                    "Methods ranking the words, comma-separated, or all (default raw,rollout,flow,attattr,blankout,"
                    "random)")
      ->delimiter(',');
  words->add_option("--k", aw->max_k, "Largest number of replaced words (default 5)")->check(CLI::PositiveNumber);
  words->add_option("--replacement", aw->replacement, "mask, unk, or any vocabulary token (default [MASK])");
  words->add_option("--seed", aw->seed, "Seed of the random baseline (default 0)");
  words->add_option("-o,--output", aw->output, "Output folder")->required();
  words->add_flag("-q,--quiet", aw->quiet, "No progress bar or summary lines");
  words->callback([aw, &action] { action = [aw] { run_attack_words(*aw); }; });
}

}  // namespace attnlens::cli
