// `attnlens evaluate`: how faithful each explanation method is over a data set (eval/image_evaluation.hpp), with a
// per-image CSV that grows as the run goes (--resume continues it), summary tables and one report.html.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/item_run.hpp"
#include "cli/model_inputs.hpp"
#include "cli/processes.hpp"
#include "cli/text_commands.hpp"
#include "eval/evaluation_report.hpp"
#include "eval/evaluation_table.hpp"
#include "eval/image_evaluation.hpp"
#include "eval/text_evaluation.hpp"

namespace attnlens::cli {

namespace {

namespace fs = std::filesystem;

struct EvaluateState {
  ModelOptions model;
  std::string data;
  std::vector<std::string> methods{"raw", "rollout", "grad-rollout", "flow", "chefer"};
  std::vector<std::string> baselines{"random", "centre"};
  std::string metrics = "all";
  std::size_t limit = 0;
  bool shuffle = false;
  std::uint64_t seed = 0;
  int threads = 0;
  int gallery = 4;
  bool resume = false;
  std::string shard;   ///< --shard K/N
  bool merge = false;  ///< --merge: join the shards in -o DIR
  bool quiet = false;
  std::string output;
  MethodSettings settings;
  std::string atman_threshold = "0.6";
  bool text = false;           ///< --text: a text classifier on labelled texts
  std::string split = "test";  ///< --text: which split of the labelled texts
  int attack_k = 5;            ///< --text: the word attack masks up to this many top words
};

std::string joined(const nlohmann::json& list) {
  std::string s;
  for (const auto& x : list) s += (s.empty() ? "" : ",") + x.get<std::string>();
  return s;
}

// summary.json's aggregate part: mean, std and count of every metric per row, the mean curves, the Spearman matrix.
nlohmann::json summary_rows_json(const EvaluationSummary& summary) {
  nlohmann::json rows = nlohmann::json::array();
  for (const RowSummary& r : summary.rows) {
    nlohmann::json row{{"method", r.method}};
    for (const auto& [name, m] : r.scalars) {
      if (m.count == 0) continue;
      row[name] = {{"mean", m.mean}, {"std", m.std}, {"count", m.count}};
    }
    row["deletion_curve"] = r.deletion_curve;
    row["insertion_curve"] = r.insertion_curve;
    row["positive_accuracy"] = r.positive_accuracy;
    row["negative_accuracy"] = r.negative_accuracy;
    row["spearman_vs"] = nlohmann::json::object();
    for (std::size_t j = 0; j < r.spearman_vs.size(); ++j) row["spearman_vs"][summary.row_names[j]] = r.spearman_vs[j];
    rows.push_back(row);
  }
  return rows;
}

// The report's settings box, from the identity alone (a merge has no model loaded).
std::string settings_text(const RunIdentity& id, std::size_t items) {
  const bool text = id.at("kind") == "text";
  std::string s = "model: " + id.at("model").get<std::string>() + "\ndata: " + id.at("data").get<std::string>();
  if (text) {
    s += ", " + id.at("split").get<std::string>() + " split (" + std::to_string(items) + " texts)";
  } else {
    s += " (" + std::to_string(items) + " images" + (id.at("shuffle").get<bool>() ? ", shuffled" : "") + ")";
  }
  s += "\nmethods: " + joined(id.at("methods")) + "\nbaselines: " + joined(id.at("baselines"));
  if (text) {
    s += "\nword attack: k = 0.." + std::to_string(id.at("word_attack_k").get<int>());
  } else {
    s += "\nmetrics: " + id.at("metrics").get<std::string>();
  }
  return s;
}

// The terminal's table: the mean of a few metrics per row (summary.csv has them all).
std::string summary_text(const EvaluationSummary& summary, bool text, const fs::path& out) {
  struct Column {
    const char* title;
    const char* metric;
    const char* format;
  };
  const std::vector<Column> columns =
      text ? std::vector<Column>{{"rho-blank", "spearman_blankout", "%11.3f"}, {"top-20%", "top_overlap_blankout", "%11.3f"},
                                 {"deletion", "deletion_auc", "%11.3f"},       {"insertion", "insertion_auc", "%11.3f"},
                                 {"saco", "saco", "%11.3f"},                   {"attack", "word_attack_auc", "%11.3f"}}
           : std::vector<Column>{{"rho-blank", "spearman_blankout", "%11.3f"}, {"top-10%", "top_overlap_blankout", "%11.3f"},
                                 {"deletion", "deletion_auc", "%11.3f"},       {"insertion", "insertion_auc", "%11.3f"},
                                 {"pointing", "pointing_hit", "%11.3f"},       {"ms", "milliseconds", "%11.2f"}};
  std::string os = "evaluated " + std::to_string(summary.images) + " " + summary.unit + "(s); mean over " +
                   summary.unit + "s:\n";
  char cell[64];
  std::snprintf(cell, sizeof cell, "%-16s", "method");
  os += cell;
  for (const Column& c : columns) std::snprintf(cell, sizeof cell, "%11s", c.title), os += cell;
  os += "\n";
  for (const RowSummary& r : summary.rows) {
    std::snprintf(cell, sizeof cell, "%-16s", r.method.c_str());
    os += cell;
    for (const Column& c : columns) {
      const MeanStd& m = r.scalars.at(c.metric);
      std::snprintf(cell, sizeof cell, c.format, m.count ? m.mean : NAN);
      os += cell;
    }
    os += "\n";
  }
  return os + "outputs written to " + out.string() + " (open report.html)\n";
}

// The evaluation's finisher (cli/item_run.hpp): summary.csv, summary.json and report.html from the merged table.
RunOutputs evaluation_outputs(const std::string& out_dir, const RunIdentity& id, const std::string& table_text,
                              const std::vector<std::string>& part_dirs, std::optional<int> threads) {
  const fs::path out = out_dir;
  const std::vector<std::string> rows = id.at("rows").get<std::vector<std::string>>();
  const bool text = id.at("kind") == "text";
  const std::vector<ImageScores> items =
      parse_evaluation_csv(table_text, rows, (out / id.at("table").at("name").get<std::string>()).string());
  EvaluationSummary summary = summarise(items, rows);
  summary.unit = text ? "text" : "image";
  // Gallery pictures saved in the shards are read where they are; OUT's own gallery/ is what a single process saved.
  const std::vector<GalleryEntry> gallery =
      text ? std::vector<GalleryEntry>{} : load_gallery(part_dirs, id.at("gallery").get<std::size_t>());
  nlohmann::json js{{"run", id}, {text ? "texts" : "images", summary.images}, {"rows", summary_rows_json(summary)}};
  if (threads) js["threads"] = *threads;  // what --threads (default: the free cores) gave LibTorch
  js["parts"] = part_dirs.size() == 1 ? 1 : part_dirs.size() - 1;  // the processes (shards, ranks) merged
  js["accuracy"] = std::isfinite(summary.accuracy) ? nlohmann::json(summary.accuracy) : nlohmann::json();
  js["curve_fractions"] = curve_fractions();
  if (!text) js["perturbation_fractions"] = perturbation_fractions();
  RunOutputs o;
  o.files = {{(out / "summary.csv").string(), summary_csv(summary)},
             {(out / "summary.json").string(), js.dump(2)},
             {(out / "report.html").string(),
              evaluation_report_html(summary, settings_text(id, summary.images), gallery)}};
  o.terminal = summary_text(summary, text, out);
  return o;
}

// The settings of the methods, as run.json records them (a resumed or merged run must have used the same).
nlohmann::json method_settings_json(const MethodSettings& s) {
  return {{"query_row", s.query_row},
          {"fusion", static_cast<int>(s.fusion)},
          {"discard_ratio", s.discard_ratio},
          {"grad_discard_ratio", s.grad_discard_ratio},
          {"rollout_mode", static_cast<int>(s.rollout_mode)},
          {"reference", s.reference},
          {"residual", static_cast<int>(s.residual)},
          {"start_layer", s.start_layer},
          {"layer", s.layer},
          {"steps", s.steps},
          {"bi_start_layer", s.bi_start_layer},
          {"gamma_conv", s.gamma_conv},
          {"gamma_linear", s.gamma_linear},
          {"gamma_attention_projections", s.gamma_attention_projections},
          {"lrp_epsilon", s.lrp_epsilon},
          {"atman_factor", s.atman_factor},
          {"atman_threshold", std::isfinite(s.atman_threshold) ? nlohmann::json(s.atman_threshold) : nlohmann::json()},
          {"batch", s.batch},
          {"chefer_lrp_variant", s.chefer_lrp_variant},
          {"text_start_layer", s.text_start_layer},
          {"grad_sam_axis", s.grad_sam_axis}};
}

ItemRunOptions run_options(const EvaluateState& st) { return {st.output, st.resume, st.shard, st.quiet}; }

// `evaluate --text`: the text methods on a labelled split (eval/text_evaluation.hpp).
void run_evaluate_text(const EvaluateState& st) {
  if (st.shuffle) throw InputError("--shuffle is for images; --text takes the split as is");
  TextModelOptions mo;
  mo.model = st.model.model;
  mo.device = st.model.device;
  const TextModel tm = open_text_model(mo);
  TextEvaluationPlan plan;
  plan.methods = st.methods;
  if (plan.methods.size() == 1 && plan.methods[0] == "all") plan.methods = text_method_names();
  // The image default (random, centre) means "the default" here; a centre prior has no meaning for a sentence.
  const bool default_baselines = st.baselines == std::vector<std::string>{"random", "centre"};
  plan.baselines = st.baselines.size() == 1 && st.baselines[0] == "none" ? std::vector<std::string>{}
                   : default_baselines                                   ? std::vector<std::string>{"random"}
                                                                         : st.baselines;
  plan.settings = st.settings;
  resolve_relevance_options(plan.settings, st.atman_threshold);
  plan.attattr.steps = st.settings.steps;
  plan.attack_k = st.attack_k;
  plan.seed = st.seed;
  set_threads(st.threads);
  const TextEvaluator evaluator(tm, plan);
  const bool talk = !st.quiet && Processes::job().rank() == 0;
  const LabelledTexts texts = load_labelled_split(tm, st.data, st.split, static_cast<int>(st.limit), !talk);
  const RunTable table{"per_text.csv", evaluation_csv_header(evaluator.row_names()), evaluator.row_names().size(),
                       texts.encoded.size(), 1};
  const RunIdentity identity{{"kind", "text"},
                             {"command", "evaluate"},
                             {"noun", "texts"},
                             {"table", run_table_json(table)},
                             {"model", tm.path},
                             {"data", st.data.empty() ? "data/sentiment" : st.data},
                             {"split", st.split},
                             {"limit", st.limit},
                             {"methods", plan.methods},
                             {"baselines", plan.baselines},
                             {"rows", evaluator.row_names()},
                             {"word_attack_k", plan.attack_k},
                             {"seed", st.seed},
                             {"settings", method_settings_json(plan.settings)},
                             {"gallery", 0}};
  run_items(run_options(st), identity, [&](std::size_t i, std::size_t, const std::string&) {
    return std::vector<std::string>{evaluation_csv_rows(evaluator.evaluate(texts, i))};
  });
}

void run_evaluate(const EvaluateState& st) {
  if (st.output.empty()) throw InputError("-o DIR is required");
  if (st.merge) {
    merge_run(st.output, st.quiet);
    return;
  }
  if (st.text) {
    run_evaluate_text(st);
    return;
  }
  if (st.data.empty()) throw InputError("--data is required");
  EvaluationPlan plan;
  plan.methods = st.methods;
  plan.settings = st.settings;
  resolve_relevance_options(plan.settings, st.atman_threshold);
  plan.baselines = st.baselines.size() == 1 && st.baselines[0] == "none" ? std::vector<std::string>{} : st.baselines;
  plan.metrics = EvaluationMetrics::parse(st.metrics);
  plan.seed = st.seed;
  plan.batch = st.model.batch;
  set_threads(st.threads);

  const std::unique_ptr<ImageClassifier> model = load_model(st.model);
  const ImageModelConfig& c = model->config();
  if (plan.methods.size() == 1 && plan.methods[0] == "all") {  // every method with one map that fits the model
    plan.methods.clear();
    for (const auto& name : image_method_names(c))
      if (name != "heads") plan.methods.push_back(name);
  }
  const Preprocess pre = resolve_preprocess(st.model, c);
  InputSpace space;
  space.mean = pre.mean;
  space.std = pre.std;
  const ImageEvaluator evaluator(*model, space, plan);
  const ImageDataset data = open_model_dataset(st.data, c, st.limit, st.shuffle, st.seed);
  if (plan.metrics.localization && !data.has_boxes() && st.metrics != "all")
    throw InputError("--metrics localization needs boxes; " + st.data + " has none (use the canvas set)");

  // The run's identity: a resumed run, and every shard of a split one, must be this same run.
  const RunTable table{"per_image.csv", evaluation_csv_header(evaluator.row_names()), evaluator.row_names().size(),
                       data.size(), 1};
  RunIdentity identity{{"kind", "image"},
                             {"command", "evaluate"},
                             {"noun", "images"},
                             {"table", run_table_json(table)},
                             {"methods", plan.methods},
                             {"baselines", plan.baselines},
                             {"metrics", st.metrics},
                             {"rows", evaluator.row_names()},
                             {"settings", method_settings_json(plan.settings)},
                             {"gallery", st.gallery},
                             {"saved_folders", nlohmann::json::array({"gallery"})}};
  identity.update(image_run_json(st.model, st.data, st.limit, st.shuffle, st.seed));
  // Each image alone, its rows and (for the first --gallery images) every row's map over the picture, saved in the
  // part so that the report can be drawn from the folder.
  run_items(run_options(st), identity, [&](std::size_t i, std::size_t, const std::string& part) {
    DatasetImage d = load_dataset_image(data, i, pre, c);
    std::vector<ImageScores> scored = evaluator.evaluate({{i, d.image.path, d.image.tensor, d.label, d.box}});
    ImageScores& s = scored.front();
    if (i < static_cast<std::size_t>(st.gallery) && !d.image.rgb.empty()) {
      GalleryEntry e;
      e.rgb = d.image.rgb;
      e.caption = fs::path(s.id).filename().string() + ": " + label_of(c, s.predicted) +
                  (s.label >= 0 ? " (true: " + label_of(c, s.label) + ")" : "");
      for (std::size_t r = 0; r < s.maps.size(); ++r) e.maps.emplace_back(evaluator.row_names()[r], s.maps[r]);
      save_gallery_entry(part, i, e);
    }
    return std::vector<std::string>{evaluation_csv_rows(s)};
  });
}

}  // namespace

void add_evaluate_command(CLI::App& app, Action& action) {
  register_run_kind("image", evaluation_outputs);
  register_run_kind("text", evaluation_outputs);
  auto st = std::make_shared<EvaluateState>();
  // --batch stays at 16 images per forward pass: blank-out of a DeiT-tiny image in passes of 16 took 0.66x the time
  // of one pass of all 197 copies (bench_models), whose activations no longer fit in the caches.
  CLI::App* cmd = app.add_subcommand(
      "evaluate",
      "How faithful are the explanations? Over a data set, each method's patch map is compared with blank-out "
      "(Spearman, top-10% overlap), scored by deletion/insertion curves and positive/negative perturbation, and, on "
      "data with boxes (the canvas set), by localisation; with random and centre-prior baselines and each method's "
      "cost. Writes per_image.csv (grows as the run goes; --resume continues it), summary.csv, summary.json and "
      "report.html");
  add_model_options(cmd, st->model);
  cmd->add_option("--data", st->data,
                  "Images: 'canvas' (the bundled model's Fashion-MNIST canvas set, with boxes), a folder with "
                  "samples.json (boxes), an IDX file or folder, a folder of class folders, or a folder of images. "
                  "With --text: labelled texts (default data/sentiment, the sentiment@5.0.2 reviews)");
  auto* text = cmd->add_option_group("Text (--text: a BERT, DistilBERT or RoBERTa classifier)");
  text->add_flag("--text", st->text,
                 "Evaluate the text methods on labelled texts instead (--model default: the bundled sentiment BERT): "
                 "token blank-out Spearman and top-20% overlap, deletion/insertion by masking words, SaCo over word "
                 "groups, the word attack's AUC, with a random baseline; per_text.csv, summary.csv/json, report.html");
  text->add_option("--split", st->split, "--text: test (default; i % 5 == 4), train or all")
      ->check(CLI::IsMember({"all", "train", "test"}));
  text->add_option("--k", st->attack_k, "--text: the word attack masks the top 1..k words (default 5)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--methods", st->methods,
                  "Methods to score (comma list, or all; default raw, rollout, grad-rollout, flow, chefer): any of "
                  "explain's but heads")
      ->delimiter(',');
  cmd->add_option("--baselines", st->baselines, "Baselines scored like methods: random, centre, or none")
      ->delimiter(',');
  cmd->add_option("--metrics", st->metrics,
                  "blankout, deletion, insertion, positive, negative, localization, saco (comma list) or all; "
                  "localization is skipped on data without boxes unless asked for");
  cmd->add_option("--limit", st->limit, "Only the first N images (after --shuffle); 0 = all");
  cmd->add_flag("--shuffle", st->shuffle, "Shuffle the data set first (with --seed)");
  cmd->add_option("--seed", st->seed, "Seed of --shuffle and of the random baseline (default 0)");
  cmd->add_option("--threads", st->threads,
                  "LibTorch threads (default 0: the cores not busy with other work, at least 1; under MPI the node's "
                  "cores shared among its ranks)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--gallery", st->gallery, "Images shown with every map in report.html (default 4)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--resume", st->resume,
                "Continue the run in -o DIR where it stopped (same options; with any number of shards or MPI ranks: "
                "only the items no part holds are computed)");
  auto* large = cmd->add_option_group("Large evaluations (README: Large evaluations)");
  large->add_option("--shard", st->shard,
                    "Compute share K of N (1-based; the items i with i mod N = K-1) into -o DIR/shard-K-of-N, for "
                    "scheduler job arrays; the last shard to finish merges, or run attnlens merge DIR. Under "
                    "mpirun/srun the ranks share the items without it");
  large->add_flag("--merge", st->merge,
                  "Only merge the shards in -o DIR into its per_image.csv (per_text.csv), summary.* and report.html "
                  "(the same as attnlens merge DIR)");
  cmd->add_flag("-q,--quiet", st->quiet, "No progress bar or summary on the terminal");
  cmd->add_option("-o,--output", st->output, "Output folder")->required();
  add_relevance_options(cmd, st->settings, st->atman_threshold, /*with_steps=*/true);
  cmd->callback([st, &action] { action = [st] { run_evaluate(*st); }; });
}

}  // namespace attnlens::cli
