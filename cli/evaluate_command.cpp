// `attnlens evaluate`: how faithful each explanation method is over a data set (eval/image_evaluation.hpp), with a
// per-image CSV that grows as the run goes (--resume continues it), summary tables and one report.html.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/model_inputs.hpp"
#include "cli/text_commands.hpp"
#include "eval/evaluation_report.hpp"
#include "eval/evaluation_table.hpp"
#include "eval/image_evaluation.hpp"
#include "eval/text_evaluation.hpp"
#include "io/atomic_file.hpp"

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
  bool quiet = false;
  std::string output;
  MethodSettings settings;
  std::string atman_threshold = "0.6";
  bool text = false;           ///< --text: a text classifier on labelled texts
  std::string split = "test";  ///< --text: which split of the labelled texts
  int attack_k = 5;            ///< --text: the word attack masks up to this many top words
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

// summary.json's aggregate part: mean, std and count of every metric per row, the mean curves, the Spearman matrix.
nlohmann::json summary_json(const EvaluationSummary& summary) {
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

// `evaluate --text`: the text methods on a labelled split (eval/text_evaluation.hpp).
void run_evaluate_text(const EvaluateState& st) {
  if (st.resume || st.shuffle) throw InputError("--resume and --shuffle are for images; --text takes the split as is");
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
  const LabelledTexts texts = load_labelled_split(tm, st.data, st.split, static_cast<int>(st.limit), st.quiet);

  ProgressBar bar("evaluate", "texts", !st.quiet);
  const auto scored = evaluator.evaluate(texts, [&bar](long long done, long long total) { bar.update(done, total); });
  bar.finish();
  EvaluationSummary summary = summarise(scored, evaluator.row_names());
  summary.unit = "text";
  const fs::path out = st.output;
  std::string table = evaluation_csv_header(evaluator.row_names());
  for (const ImageScores& s : scored) table += evaluation_csv_rows(s);
  const nlohmann::json run{{"model", tm.path},
                           {"data", st.data.empty() ? "data/sentiment" : st.data},
                           {"split", st.split},
                           {"texts", scored.size()},
                           {"methods", evaluator.row_names()},
                           {"word_attack_k", plan.attack_k},
                           {"seed", st.seed}};
  nlohmann::json js{{"run", run}, {"texts", summary.images}, {"rows", summary_json(summary)}};
  js["accuracy"] = std::isfinite(summary.accuracy) ? nlohmann::json(summary.accuracy) : nlohmann::json();
  js["curve_fractions"] = curve_fractions();
  const std::string settings = "model: " + tm.path + "\ndata: " + run["data"].get<std::string>() + ", " + st.split +
                               " split (" + std::to_string(summary.images) + " texts)\nmethods: " +
                               joined(plan.methods) + "\nbaselines: " + joined(plan.baselines) +
                               "\nword attack: k = 0.." + std::to_string(plan.attack_k);
  write_file_atomic((out / "per_text.csv").string(), table);
  write_file_atomic((out / "summary.csv").string(), summary_csv(summary));
  write_file_atomic((out / "summary.json").string(), js.dump(2));
  write_file_atomic((out / "report.html").string(), evaluation_report_html(summary, settings, {}));
  if (!st.quiet) {
    std::cout << "evaluated " << summary.images << " text(s); mean over texts:\n";
    std::printf("%-16s %10s %10s %10s %10s %10s %10s\n", "method", "rho-blank", "top-20%", "deletion", "insertion",
                "saco", "attack");
    for (const RowSummary& r : summary.rows) {
      const auto v = [&](const char* k) { return r.scalars.at(k).mean; };
      std::printf("%-16s %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f\n", r.method.c_str(), v("spearman_blankout"),
                  v("top_overlap_blankout"), v("deletion_auc"), v("insertion_auc"), v("saco"), v("word_attack_auc"));
    }
    std::cout << "outputs written to " << out.string() << " (open report.html)" << std::endl;
  }
}

void run_evaluate(const EvaluateState& st) {
  if (st.output.empty()) throw InputError("-o DIR is required");
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

  // The run's identity: a resumed run must continue the same one.
  const nlohmann::json run{{"model", st.model.model.empty() ? "bundled fmnist-vit" : st.model.model},
                           {"data", st.data},
                           {"images", data.size()},
                           {"shuffle", st.shuffle},
                           {"seed", st.seed},
                           {"methods", plan.methods},
                           {"baselines", plan.baselines},
                           {"metrics", st.metrics}};
  const fs::path out = st.output;
  const fs::path table = out / "per_image.csv", run_file = out / "run.json";
  std::vector<ImageScores> done;
  if (st.resume && fs::exists(table)) {
    std::ifstream in(run_file);
    nlohmann::json previous;
    try {
      in >> previous;
    } catch (const std::exception&) {
      throw InputError(run_file.string() + ": missing or unreadable; cannot resume this folder");
    }
    if (previous != run)
      throw InputError("--resume: " + run_file.string() + " describes another run (" + previous.dump() +
                       "); use the same options or another -o");
    std::size_t complete = 0;
    done = read_evaluation_csv(table.string(), evaluator.row_names(), &complete);
    fs::resize_file(table, complete);  // drop a block cut short by the interruption
  } else {
    fs::create_directories(out);
    write_file_atomic(run_file.string(), run.dump(2));
    write_file_atomic(table.string(), evaluation_csv_header(evaluator.row_names()));
  }
  std::vector<char> finished(data.size(), 0);
  for (const auto& im : done)
    if (im.index < finished.size()) finished[im.index] = 1;

  std::ofstream append(table, std::ios::app | std::ios::binary);
  if (!append) throw InputError(table.string() + ": cannot append");
  // The bar counts this run's images only, so its rate and ETA stay right after --resume.
  ProgressBar bar("evaluate", "images", !st.quiet);
  const auto remaining = static_cast<long long>(data.size() - done.size());
  long long count = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (finished[i]) continue;
    DatasetImage d = load_dataset_image(data, i, pre, c);
    for (ImageScores& scores : evaluator.evaluate({{i, d.image.path, d.image.tensor, d.label, d.box}})) {
      append << evaluation_csv_rows(scores);
      append.flush();  // an interrupted run keeps every finished image
      done.push_back(std::move(scores));
      bar.update(++count, remaining);
    }
  }
  bar.finish();
  if (!append) throw InputError(table.string() + ": write failed");
  append.close();

  std::sort(done.begin(), done.end(), [](const ImageScores& a, const ImageScores& b) { return a.index < b.index; });
  const EvaluationSummary summary = summarise(done, evaluator.row_names());

  // The gallery: the first few images again (cheap), with every row's map.
  std::vector<GalleryEntry> gallery;
  {
    EvaluationPlan light = plan;
    light.metrics = EvaluationMetrics{plan.metrics.blankout, false, false, false, false, false, false};
    const ImageEvaluator painter(*model, space, light);
    std::vector<EvaluationImage> first;
    std::vector<cv::Mat> pictures;
    for (std::size_t i = 0; i < data.size() && static_cast<int>(first.size()) < st.gallery; ++i) {
      DatasetImage d = load_dataset_image(data, i, pre, c);
      if (d.image.rgb.empty()) continue;
      pictures.push_back(d.image.rgb);
      first.push_back({i, d.image.path, d.image.tensor, d.label, d.box});
    }
    const auto scored = painter.evaluate(first);
    for (std::size_t g = 0; g < scored.size(); ++g) {
      GalleryEntry e;
      e.rgb = pictures[g];
      e.caption = fs::path(scored[g].id).filename().string() + ": " + label_of(c, scored[g].predicted) +
                  (scored[g].label >= 0 ? " (true: " + label_of(c, scored[g].label) + ")" : "");
      for (std::size_t r = 0; r < scored[g].maps.size(); ++r)
        e.maps.emplace_back(painter.row_names()[r], scored[g].maps[r]);
      gallery.push_back(std::move(e));
    }
  }

  nlohmann::json js{{"run", run}, {"images", summary.images}, {"rows", summary_json(summary)}};
  js["threads"] = torch::get_num_threads();  // what --threads (default: the free cores) gave LibTorch
  js["accuracy"] = std::isfinite(summary.accuracy) ? nlohmann::json(summary.accuracy) : nlohmann::json();
  js["curve_fractions"] = curve_fractions();
  js["perturbation_fractions"] = perturbation_fractions();
  std::string settings = "model: " + run["model"].get<std::string>() + "\ndata: " + st.data + " (" +
                         std::to_string(summary.images) + " images" + (st.shuffle ? ", shuffled" : "") +
                         ")\nmethods: " + joined(plan.methods) + "\nbaselines: " + joined(plan.baselines) +
                         "\nmetrics: " + st.metrics;
  write_file_atomic((out / "summary.csv").string(), summary_csv(summary));
  write_file_atomic((out / "summary.json").string(), js.dump(2));
  write_file_atomic((out / "report.html").string(), evaluation_report_html(summary, settings, gallery));
  if (!st.quiet) {
    std::cout << "evaluated " << summary.images << " image(s); mean over images:\n";
    std::printf("%-14s %10s %10s %10s %10s %10s %10s\n", "method", "rho-blank", "top-10%", "deletion", "insertion",
                "pointing", "ms");
    for (const RowSummary& r : summary.rows) {
      const auto v = [&](const char* k) { return r.scalars.at(k).count ? r.scalars.at(k).mean : NAN; };
      std::printf("%-14s %10.3f %10.3f %10.3f %10.3f %10.3f %10.2f\n", r.method.c_str(), v("spearman_blankout"),
                  v("top_overlap_blankout"), v("deletion_auc"), v("insertion_auc"), v("pointing_hit"),
                  v("milliseconds"));
    }
    std::cout << "outputs written to " << out.string() << " (open report.html)" << std::endl;
  }
}

}  // namespace

void add_evaluate_command(CLI::App& app, Action& action) {
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
  cmd->add_option("--threads", st->threads, "LibTorch threads (default 0: the cores not busy with other work, at least 1)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--gallery", st->gallery, "Images shown with every map in report.html (default 4)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--resume", st->resume, "Continue the run in -o DIR where it stopped (same options)");
  cmd->add_flag("-q,--quiet", st->quiet, "No progress bar or summary on the terminal");
  cmd->add_option("-o,--output", st->output, "Output folder")->required();
  add_relevance_options(cmd, st->settings, st->atman_threshold, /*with_steps=*/true);
  cmd->callback([st, &action] { action = [st] { run_evaluate(*st); }; });
}

}  // namespace attnlens::cli
