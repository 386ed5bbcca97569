// `attnlens attack fgsm`: FGSM restricted to the area an explanation points at, to its complement, or to a random
// area of the same size (spec 8.3). If an explanation is faithful, attacking inside it should flip the prediction
// in fewer steps than outside or at random.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/item_run.hpp"
#include "cli/model_inputs.hpp"
#include "eval/evaluation_report.hpp"
#include "eval/fgsm.hpp"
#include "eval/metrics.hpp"
#include "explain/method.hpp"
#include "io/array_writer.hpp"
#include "io/atomic_file.hpp"
#include "io/csv_record.hpp"
#include "models/arrays.hpp"
#include "viz/html.hpp"
#include "viz/overlay.hpp"
#include "viz/svg.hpp"

namespace attnlens::cli {

namespace {

namespace fs = std::filesystem;

struct FgsmState {
  ModelOptions model;
  std::string data;
  FgsmStudySettings study;
  std::size_t limit = 0;
  bool shuffle = false;
  std::uint64_t seed = 0;
  int threads = 0;
  int save = 4;
  bool resume = false;
  std::string shard;
  bool quiet = false;
  std::string output;
};

const char* const kFgsmHeader = "index,id,label,original,method,region,success,iterations,final_class\n";

std::string picture_stem(std::size_t index, const std::string& method, const std::string& region) {
  return std::to_string(index) + "_" + method + "_" + region;
}

// The fgsm finisher (cli/item_run.hpp): fgsm_summary.csv, fgsm.json and report.html from the merged fgsm.csv, with
// the adversarial pictures the units saved (copied into OUT from the shards).
RunOutputs fgsm_outputs(const std::string& out_dir, const RunIdentity& id, const std::string& table_text,
                        const std::vector<std::string>& part_dirs, std::optional<int> threads) {
  const fs::path out = out_dir;
  const std::vector<FgsmArm> arms = [&] {
    std::vector<FgsmArm> a;
    for (const auto& arm : id.at("arms")) a.push_back({arm.at(0).get<std::string>(), arm.at(1).get<std::string>()});
    return a;
  }();
  const int max_iterations = id.at("max_iterations").get<int>();
  const int save = id.at("save").get<int>();
  const int width = id.at("figure_width").get<int>();
  const RunTable table = run_table_of(id);
  std::vector<FgsmArmSummary> arm_summaries(arms.size());
  RunOutputs o;
  std::vector<HtmlFigure> saved;
  std::size_t pos = table.header.size(), line = 1;
  std::vector<std::string> f;
  for (std::size_t i = 0; i < table.items; ++i) {
    for (std::size_t a = 0; a < arms.size(); ++a) {
      const std::string where = (out / table.name).string() + " line " + std::to_string(++line);
      if (!next_csv_record(table_text, pos, f) || f.size() != 9 || f[4] != arms[a].method || f[5] != arms[a].region)
        throw InputError(where + ": not the row of arm " + arms[a].method + " " + arms[a].region);
      FgsmResult r;
      r.success = parse_csv_number(f[6], where) != 0;
      r.iterations = static_cast<int>(parse_csv_number(f[7], where));
      arm_summaries[a].add(r, max_iterations);
      if (i >= static_cast<std::size_t>(save)) continue;
      // The adversarial picture and where it was allowed to change, wherever the unit saved them.
      const std::string stem = picture_stem(i, arms[a].method, arms[a].region);
      for (const std::string& dir : part_dirs) {
        const fs::path adversarial = fs::path(dir) / ("adversarial_" + stem + ".png"),
                       mask = fs::path(dir) / ("mask_" + stem + ".png");
        if (!fs::exists(adversarial) || !fs::exists(mask)) continue;
        const std::string adv_png = read_file(adversarial.string()), mask_png = read_file(mask.string());
        if (dir != out.string()) {
          o.files.emplace_back((out / adversarial.filename()).string(), adv_png);
          o.files.emplace_back((out / mask.filename()).string(), mask_png);
        }
        saved.push_back({"data:image/png;base64," + base64_encode(adv_png),
                         "#" + std::to_string(i) + " " + arms[a].method + " " + arms[a].region +
                             (r.success ? ": flipped after " + std::to_string(r.iterations) : ": not flipped"),
                         width});
        saved.push_back({"data:image/png;base64," + base64_encode(mask_png), "mask", width});
        break;
      }
    }
  }

  // Summary per arm.
  const double cap_value = max_iterations + 1;
  const double epsilon = id.at("epsilon").get<double>(), area = id.at("area").get<double>();
  const int k = id.at("patches_attacked").get<int>();
  nlohmann::json js{{"run", id},
                    {"data", id.at("data")},
                    {"images", table.items},
                    {"area", area},
                    {"patches_attacked", k},
                    {"epsilon", epsilon},
                    {"max_iterations", max_iterations},
                    {"target", id.at("target")},
                    {"parts", part_dirs.size() == 1 ? 1 : part_dirs.size() - 1},
                    {"arms", nlohmann::json::array()}};
  if (threads) js["threads"] = *threads;
  std::ostringstream summary_csv;
  summary_csv << "method,region,images,success_rate,median_iterations,mean_iterations_of_successes\n";
  std::vector<std::vector<TableCell>> rows;
  HtmlReport page("attnlens attack fgsm");
  page.section("Masked FGSM");
  const std::string target_text = id.at("target_label").get<std::string>();
  page.paragraph("FGSM restricted to the top " + TableCell::format_real(100 * area) + "% of patches (" +
                 std::to_string(k) +
                 ") by each method (inside), to the rest of the image (outside), or to a random "
                 "set of as many patches; epsilon " +
                 TableCell::format_real(epsilon) + " per step, at most " + std::to_string(max_iterations) +
                 " steps, " + (target_text.empty() ? std::string("untargeted") : "targeted at class " + target_text) +
                 " (spec 8.3). Fewer steps inside than outside or at random means the explanation points at what "
                 "the model depends on. Medians count a failure as more than the cap.");
  std::vector<std::string> histograms;
  for (std::size_t a = 0; a < arms.size(); ++a) {
    const FgsmArm& arm = arms[a];
    const FgsmArmSummary& sum = arm_summaries[a];
    const double rate = sum.success_rate();
    const double med = sum.median_iterations();
    const MeanStd mw = mean_std(sum.iterations_of_successes(max_iterations));
    summary_csv << arm.method << "," << arm.region << "," << sum.iterations.size() << "," << rate << ","
                << (med >= cap_value ? std::string("inf") : TableCell::format_real(med)) << ","
                << (mw.count ? TableCell::format_real(mw.mean) : std::string()) << "\n";
    js["arms"].push_back({{"method", arm.method},
                          {"region", arm.region},
                          {"success_rate", rate},
                          {"median_iterations", med >= cap_value ? nlohmann::json("inf") : nlohmann::json(med)},
                          {"mean_iterations_of_successes", mw.count ? nlohmann::json(mw.mean) : nlohmann::json()},
                          {"iterations", sum.iterations}});
    rows.push_back({arm.method, arm.region, static_cast<long long>(sum.iterations.size()), rate,
                    med >= cap_value ? TableCell(">" + std::to_string(max_iterations)) : TableCell(med),
                    mw.count ? TableCell(mean_pm_std(mw)) : TableCell("\u2013")});
    PlotOptions po;
    po.title = arm.method + " " + arm.region;
    po.x_label = "iterations to flip (last bin: not flipped)";
    po.y_label = "images";
    po.width = 360;
    po.height = 240;
    po.x_min = 0;
    po.x_max = cap_value + 1;
    po.legend = false;
    histograms.push_back(svg_histogram(sum.iterations, std::min(51, max_iterations + 2), po));
  }
  page.table({"method", "region", "images", "success rate", "median iterations", "iterations of successes"}, rows,
             "Success rate and iterations needed per method and region");
  page.section("Iterations needed");
  for (std::size_t i = 0; i < histograms.size(); ++i) page.svg(histograms[i], arms[i].method + " " + arms[i].region);
  if (!saved.empty()) {
    page.section("Adversarial examples");
    page.images(saved);
  }
  o.files.emplace_back((out / "fgsm_summary.csv").string(), summary_csv.str());
  o.files.emplace_back((out / "fgsm.json").string(), js.dump(2));
  o.files.emplace_back((out / "report.html").string(), page.html());
  o.terminal = summary_csv.str() + "outputs written to " + out.string() + " (open report.html)\n";
  return o;
}

void run_fgsm(FgsmState& st) {
  if (st.output.empty()) throw InputError("-o DIR is required");
  st.study.seed = st.seed;
  const FgsmSettings& attack = st.study.attack;
  set_threads(st.threads);
  const std::unique_ptr<ImageClassifier> model = load_model(st.model);
  const ImageModelConfig& c = model->config();
  const Preprocess pre = resolve_preprocess(st.model, c);
  InputSpace space;
  space.mean = pre.mean;
  space.std = pre.std;
  const FgsmStudy study(*model, space, st.study);
  const ImageDataset data = open_model_dataset(st.data, c, st.limit, st.shuffle, st.seed);
  const std::vector<FgsmArm>& arms = study.arms();

  // The unit of work is a batch of --batch consecutive images, as one process forms them: a batch's attack runs
  // the same whichever process computes it, so the rows are those of one process.
  const RunTable table{"fgsm.csv", kFgsmHeader, arms.size(), data.size(),
                       static_cast<std::size_t>(std::max(1, st.model.batch))};
  nlohmann::json arm_list = nlohmann::json::array();
  for (const FgsmArm& arm : arms) arm_list.push_back({arm.method, arm.region});
  RunIdentity identity{{"kind", "fgsm"},
                             {"command", "fgsm"},
                             {"noun", "images"},
                             {"table", run_table_json(table)},
                             {"arms", arm_list},
                             {"area", st.study.area},
                             {"patches_attacked", study.patches_attacked()},
                             {"epsilon", attack.epsilon},
                             {"max_iterations", attack.max_iterations},
                             {"target", attack.target},
                             {"target_label", attack.target >= 0 ? label_of(c, attack.target) : std::string()},
                             {"save", st.save},
                             {"figure_width", c.image_width >= 160 ? 0 : 160}};
  identity.update(image_run_json(st.model, st.data, st.limit, st.shuffle, st.seed));
  run_items({st.output, st.resume, st.shard, st.quiet}, identity,
            [&](std::size_t first, std::size_t count, const std::string& part) {
              std::vector<DatasetImage> items;
              std::vector<torch::Tensor> tensors;
              for (std::size_t i = first; i < first + count; ++i) {
                items.push_back(load_dataset_image(data, i, pre, c));
                tensors.push_back(items.back().image.tensor);
              }
              const std::vector<FgsmArmBatch> outcome = study.attack(torch::stack(tensors), first);
              std::vector<std::string> blocks(count);
              for (std::size_t b = 0; b < count; ++b) {
                std::ostringstream csv;
                for (std::size_t a = 0; a < arms.size(); ++a) {
                  const FgsmResult& r = outcome[a].results[b];
                  csv << first + b << "," << csv_field(items[b].image.path) << "," << items[b].label << ","
                      << r.original << "," << arms[a].method << "," << arms[a].region << "," << (r.success ? 1 : 0)
                      << "," << r.iterations << "," << r.final_class << "\n";
                  if (first + b >= static_cast<std::size_t>(st.save) || items[b].image.rgb.empty()) continue;
                  const torch::Tensor adv = (r.adversarial * 255.0)
                                                .round()
                                                .clamp(0, 255)
                                                .to(torch::kUInt8)
                                                .permute({1, 2, 0})
                                                .contiguous();
                  cv::Mat rgb(c.image_height, c.image_width, CV_8UC3, adv.data_ptr<std::uint8_t>());
                  const std::string stem = picture_stem(first + b, arms[a].method, arms[a].region);
                  write_file_atomic((fs::path(part) / ("adversarial_" + stem + ".png")).string(),
                                    encode_png(rgb_to_bgr(rgb)));
                  const torch::Tensor mk =
                      (outcome[a].masks[static_cast<std::int64_t>(b)] * 255).to(torch::kUInt8).contiguous();
                  cv::Mat m8;
                  cv::Mat(c.image_height, c.image_width, CV_8UC1, const_cast<std::uint8_t*>(mk.data_ptr<std::uint8_t>()))
                      .copyTo(m8);
                  write_file_atomic((fs::path(part) / ("mask_" + stem + ".png")).string(), encode_png(m8));
                }
                blocks[b] = csv.str();
              }
              return blocks;
            });
}

}  // namespace

void add_attack_fgsm_command(CLI::App& attack, Action& action) {
  register_run_kind("fgsm", fgsm_outputs);
  auto st = std::make_shared<FgsmState>();
  st->model.batch = 64;
  CLI::App* cmd = attack.add_subcommand(
      "fgsm",
      "FGSM restricted to a mask (spec 8.3): the top --area of patches by each --mask-method (inside), the rest "
      "(outside), or a random set of the same size; success rate and iterations to flip the prediction per method "
      "and region. Writes fgsm.csv, fgsm_summary.csv, fgsm.json, report.html and a few adversarial images");
  add_model_options(cmd, st->model);
  cmd->add_option("--data", st->data, "Images, as for evaluate (e.g. 'canvas')")->required();
  cmd->add_option("--mask-method", st->study.methods, "Methods whose maps give the masks (comma list)")->delimiter(',');
  cmd->add_option("--region", st->study.regions, "inside, outside, random (comma list)")->delimiter(',');
  cmd->add_option("--area", st->study.area, "Share of patches in the mask (default 0.1)");
  cmd->add_option("--eps", st->study.attack.epsilon, "Step size in [0,1] pixel units (default 1/255)");
  cmd->add_option("--max-iter", st->study.attack.max_iterations, "Most steps per image (default 100)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--target", st->study.attack.target, "Targeted attack towards this class (default: untargeted)");
  cmd->add_option("--limit", st->limit, "Only the first N images (after --shuffle); 0 = all");
  cmd->add_flag("--shuffle", st->shuffle, "Shuffle the data set first (with --seed)");
  cmd->add_option("--seed", st->seed, "Seed of --shuffle and of the random masks (default 0)");
  cmd->add_option("--save", st->save, "Adversarial images saved (the first N images, every arm; default 4)")
      ->check(CLI::NonNegativeNumber);
  add_run_options(cmd, st->threads, st->resume, st->shard, "batches of --batch images");
  cmd->add_flag("-q,--quiet", st->quiet, "No progress bar or summary on the terminal");
  cmd->add_option("-o,--output", st->output, "Output folder")->required();
  cmd->callback([st, &action] { action = [st] { run_fgsm(*st); }; });
}

}  // namespace attnlens::cli
