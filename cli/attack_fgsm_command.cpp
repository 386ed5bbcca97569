// `attnlens attack fgsm`: FGSM restricted to the area an explanation points at, to its complement, or to a random
// area of the same size (spec 8.3). If an explanation is faithful, attacking inside it should flip the prediction
// in fewer steps than outside or at random.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/model_inputs.hpp"
#include "eval/evaluation_report.hpp"
#include "eval/fgsm.hpp"
#include "eval/metrics.hpp"
#include "explain/method.hpp"
#include "io/atomic_file.hpp"
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
  bool quiet = false;
  std::string output;
};

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
  const int k = study.patches_attacked();
  const std::vector<FgsmArm>& arms = study.arms();
  std::vector<FgsmArmSummary> arm_summaries(arms.size());

  const fs::path out = st.output;
  std::vector<std::pair<std::string, std::string>> files;  // written only when everything succeeded
  std::ostringstream csv;
  csv << "index,id,label,original,method,region,success,iterations,final_class\n";
  std::vector<HtmlFigure> saved;
  ProgressBar bar("fgsm", "images", !st.quiet);
  const std::size_t chunk = static_cast<std::size_t>(st.model.batch);
  for (std::size_t begin = 0; begin < data.size(); begin += chunk) {
    const std::size_t end = std::min(data.size(), begin + chunk);
    std::vector<DatasetImage> items;
    std::vector<torch::Tensor> tensors;
    for (std::size_t i = begin; i < end; ++i) {
      items.push_back(load_dataset_image(data, i, pre, c));
      tensors.push_back(items.back().image.tensor);
    }
    const std::vector<FgsmArmBatch> outcome = study.attack(torch::stack(tensors), begin);
    for (std::size_t a = 0; a < arms.size(); ++a) {
      const FgsmArm& arm = arms[a];
      const torch::Tensor& mask = outcome[a].masks;
      for (std::size_t b = 0; b < outcome[a].results.size(); ++b) {
        const FgsmResult& r = outcome[a].results[b];
        arm_summaries[a].add(r, attack.max_iterations);
        csv << begin + b << "," << csv_field(items[b].image.path) << "," << items[b].label << "," << r.original << ","
            << arm.method << "," << arm.region << "," << (r.success ? 1 : 0) << "," << r.iterations << ","
            << r.final_class << "\n";
        if (begin + b < static_cast<std::size_t>(st.save) && !items[b].image.rgb.empty()) {
          // The adversarial picture and where it was allowed to change.
          const torch::Tensor adv =
              (r.adversarial * 255.0).round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
          cv::Mat rgb(c.image_height, c.image_width, CV_8UC3, adv.data_ptr<std::uint8_t>());
          const cv::Mat bgr = rgb_to_bgr(rgb);
          const std::string stem = std::to_string(begin + b) + "_" + arm.method + "_" + arm.region;
          files.emplace_back((out / ("adversarial_" + stem + ".png")).string(), encode_png(bgr));
          cv::Mat m8;
          const torch::Tensor mk = (mask[static_cast<std::int64_t>(b)] * 255).to(torch::kUInt8).contiguous();
          cv::Mat(c.image_height, c.image_width, CV_8UC1, const_cast<std::uint8_t*>(mk.data_ptr<std::uint8_t>()))
              .copyTo(m8);
          files.emplace_back((out / ("mask_" + stem + ".png")).string(), encode_png(m8));
          const int width = c.image_width >= 160 ? 0 : 160;
          saved.push_back({png_data_uri(bgr),
                           "#" + std::to_string(begin + b) + " " + arm.method + " " + arm.region +
                               (r.success ? ": flipped after " + std::to_string(r.iterations) : ": not flipped"),
                           width});
          saved.push_back({png_data_uri(m8), "mask", width});
        }
      }
    }
    bar.update(static_cast<long long>(end), static_cast<long long>(data.size()));
  }
  bar.finish();

  // Summary per arm.
  const double cap_value = attack.max_iterations + 1;
  nlohmann::json js{{"data", st.data},           {"images", data.size()},
                    {"area", st.study.area},     {"patches_attacked", k},
                    {"epsilon", attack.epsilon}, {"max_iterations", attack.max_iterations},
                    {"target", attack.target},   {"arms", nlohmann::json::array()}};
  std::ostringstream summary_csv;
  summary_csv << "method,region,images,success_rate,median_iterations,mean_iterations_of_successes\n";
  std::vector<std::vector<TableCell>> rows;
  HtmlReport page("attnlens attack fgsm");
  page.section("Masked FGSM");
  page.paragraph("FGSM restricted to the top " + TableCell::format_real(100 * st.study.area) + "% of patches (" +
                 std::to_string(k) +
                 ") by each method (inside), to the rest of the image (outside), or to a random "
                 "set of as many patches; epsilon " +
                 TableCell::format_real(attack.epsilon) +
                 " per step, at "
                 "most " +
                 std::to_string(attack.max_iterations) + " steps, " +
                 (attack.target >= 0 ? "targeted at class " + label_of(c, attack.target) : std::string("untargeted")) +
                 " (spec 8.3). Fewer steps inside than outside or at random means the explanation points at what "
                 "the model depends on. Medians count a failure as more than the cap.");
  std::vector<std::string> histograms;
  for (std::size_t a = 0; a < arms.size(); ++a) {
    const FgsmArm& arm = arms[a];
    const FgsmArmSummary& sum = arm_summaries[a];
    const double rate = sum.success_rate();
    const double med = sum.median_iterations();
    const MeanStd mw = mean_std(sum.iterations_of_successes(attack.max_iterations));
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
                    med >= cap_value ? TableCell(">" + std::to_string(attack.max_iterations)) : TableCell(med),
                    mw.count ? TableCell(mean_pm_std(mw)) : TableCell("\u2013")});
    PlotOptions o;
    o.title = arm.method + " " + arm.region;
    o.x_label = "iterations to flip (last bin: not flipped)";
    o.y_label = "images";
    o.width = 360;
    o.height = 240;
    o.x_min = 0;
    o.x_max = cap_value + 1;
    o.legend = false;
    histograms.push_back(svg_histogram(sum.iterations, std::min(51, attack.max_iterations + 2), o));
  }
  page.table({"method", "region", "images", "success rate", "median iterations", "iterations of successes"}, rows,
             "Success rate and iterations needed per method and region");
  page.section("Iterations needed");
  for (std::size_t i = 0; i < histograms.size(); ++i) page.svg(histograms[i], arms[i].method + " " + arms[i].region);
  if (!saved.empty()) {
    page.section("Adversarial examples");
    page.images(saved);
  }
  files.emplace_back((out / "fgsm.csv").string(), csv.str());
  files.emplace_back((out / "fgsm_summary.csv").string(), summary_csv.str());
  files.emplace_back((out / "fgsm.json").string(), js.dump(2));
  files.emplace_back((out / "report.html").string(), page.html());
  fs::create_directories(out);
  for (const auto& [path, content] : files) write_file_atomic(path, content);
  if (!st.quiet) {
    std::cout << summary_csv.str() << "outputs written to " << out.string() << " (open report.html)" << std::endl;
  }
}

}  // namespace

void add_attack_fgsm_command(CLI::App& attack, Action& action) {
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
  cmd->add_option("--threads", st->threads,
                  "LibTorch threads (default 0: the cores not busy with other work, at least 1)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--save", st->save, "Adversarial images saved (the first N images, every arm; default 4)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("-q,--quiet", st->quiet, "No progress bar or summary on the terminal");
  cmd->add_option("-o,--output", st->output, "Output folder")->required();
  cmd->callback([st, &action] { action = [st] { run_fgsm(*st); }; });
}

}  // namespace attnlens::cli
