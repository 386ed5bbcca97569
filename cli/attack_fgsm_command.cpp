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
  std::vector<std::string> methods{"raw", "rollout", "grad-rollout", "flow", "chefer"};
  std::vector<std::string> regions{"inside", "outside", "random"};
  double area = 0.1;
  FgsmSettings settings;
  std::size_t limit = 0;
  bool shuffle = false;
  std::uint64_t seed = 0;
  int threads = 0;
  int save = 4;
  bool quiet = false;
  std::string output;
};

/// One attack configuration: a method's mask (inside / outside) or the method-free random mask.
struct Arm {
  std::string method, region;
  std::vector<double> iterations;  ///< per image; max_iter + 1 for a failure (so medians and histograms see it)
  std::size_t successes = 0;
};

// Patch keep-flags [P] -> pixel mask [H,W].
torch::Tensor pixel_mask(const std::vector<int>& chosen, bool complement, const VitConfig& c) {
  auto grid = torch::full({c.grid_h() * c.grid_w()}, complement ? 1.0f : 0.0f);
  for (int p : chosen) grid[p] = complement ? 0.0f : 1.0f;
  return patch_pixels(grid.reshape({c.grid_h(), c.grid_w()}), c.patch_size);
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void run_fgsm(const FgsmState& st) {
  if (st.output.empty()) throw InputError("-o DIR is required");
  if (!(st.area > 0.0 && st.area < 1.0)) throw InputError("--area must be in (0, 1)");
  for (const auto& r : st.regions)
    if (r != "inside" && r != "outside" && r != "random")
      throw InputError("unknown region '" + r + "' (known: inside, outside, random)");
  MethodSettings ms;
  std::vector<std::unique_ptr<ExplanationMethod>> methods;
  bool gradients = false;
  const bool method_regions =
      std::any_of(st.regions.begin(), st.regions.end(), [](const std::string& r) { return r != "random"; });
  if (method_regions)
    for (const auto& name : st.methods) {
      if (name == "heads") throw InputError("method heads gives one map per head; choose a single-map method");
      methods.push_back(make_method(name, ms));
      gradients |= methods.back()->needs_gradients();
    }
  set_threads(st.threads);
  const VisionTransformer model = load_model(st.model);
  const VitConfig& c = model.config();
  if (c.num_classes == 0) throw InputError("the attack needs a classifier; this model is a backbone");
  if (st.settings.target >= c.num_classes) throw InputError("--target is out of range for this model");
  const Preprocess pre = resolve_preprocess(st.model, c);
  InputSpace space;
  space.mean = pre.mean;
  space.std = pre.std;
  const TokenLayout layout = TokenLayout::resolve(c.tokens(), c.prefix_tokens(), c.grid_h(), c.grid_w());
  const ImageDataset data = open_model_dataset(st.data, c, st.limit, st.shuffle, st.seed);
  const int k = top_k_count(static_cast<std::size_t>(layout.patches()), st.area);

  std::vector<Arm> arms;
  for (const auto& m : methods)
    for (const auto& r : st.regions)
      if (r != "random") arms.push_back({m->name(), r, {}, 0});
  if (std::find(st.regions.begin(), st.regions.end(), "random") != st.regions.end())
    arms.push_back({"-", "random", {}, 0});

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
    const torch::Tensor batch = torch::stack(tensors);
    const VitCapture cap =
        model.capture(batch, gradients ? std::vector<std::int64_t>(items.size(), -1) : std::vector<std::int64_t>{});
    // Top-k patch sets per method and image; the random set depends on the image only.
    std::vector<std::vector<std::vector<int>>> top(methods.size());
    for (std::size_t b = 0; b < items.size(); ++b) {
      AttentionRecord record;
      record.layout = layout;
      record.attention = image_layers(cap.attention, static_cast<std::int64_t>(b));
      if (gradients) {
        record.attention_grad = image_layers(cap.attention_grad, static_cast<std::int64_t>(b));
        record.scores_grad = image_layers(cap.scores_grad, static_cast<std::int64_t>(b));
      }
      for (std::size_t m = 0; m < methods.size(); ++m) {
        const std::vector<int> order = descending_order(methods[m]->explain(record).data);
        top[m].emplace_back(order.begin(), order.begin() + k);
      }
    }
    for (Arm& arm : arms) {
      std::vector<torch::Tensor> masks;
      const std::size_t m =
          arm.region == "random"
              ? 0
              : static_cast<std::size_t>(std::find_if(methods.begin(), methods.end(),
                                                      [&](const auto& x) { return x->name() == arm.method; }) -
                                         methods.begin());
      for (std::size_t b = 0; b < items.size(); ++b) {
        if (arm.region == "random") {
          const std::vector<int> order = descending_order(random_map(c.grid_h(), c.grid_w(), st.seed, begin + b).data);
          masks.push_back(pixel_mask({order.begin(), order.begin() + k}, false, c));
        } else {
          masks.push_back(pixel_mask(top[m][b], arm.region == "outside", c));
        }
      }
      const torch::Tensor mask = torch::stack(masks);
      const auto results = masked_fgsm(model, batch, mask, space, st.settings);
      for (std::size_t b = 0; b < results.size(); ++b) {
        const FgsmResult& r = results[b];
        arm.iterations.push_back(r.success ? r.iterations : st.settings.max_iterations + 1);
        arm.successes += r.success ? 1 : 0;
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
  const double cap_value = st.settings.max_iterations + 1;
  nlohmann::json js{{"data", st.data},
                    {"images", data.size()},
                    {"area", st.area},
                    {"patches_attacked", k},
                    {"epsilon", st.settings.epsilon},
                    {"max_iterations", st.settings.max_iterations},
                    {"target", st.settings.target},
                    {"arms", nlohmann::json::array()}};
  std::ostringstream summary_csv;
  summary_csv << "method,region,images,success_rate,median_iterations,mean_iterations_of_successes\n";
  std::vector<std::vector<TableCell>> rows;
  HtmlReport page("attnlens attack fgsm");
  page.section("Masked FGSM");
  page.paragraph(
      "FGSM restricted to the top " + TableCell::format_real(100 * st.area) + "% of patches (" + std::to_string(k) +
      ") by each method (inside), to the rest of the image (outside), or to a random "
      "set of as many patches; epsilon " +
      TableCell::format_real(st.settings.epsilon) +
      " per step, at "
      "most " +
      std::to_string(st.settings.max_iterations) + " steps, " +
      (st.settings.target >= 0 ? "targeted at class " + label_of(c, st.settings.target) : std::string("untargeted")) +
      " (spec 8.3). Fewer steps inside than outside or at random means the explanation points at what "
      "the model depends on. Medians count a failure as more than the cap.");
  std::vector<std::string> histograms;
  for (const Arm& arm : arms) {
    const double rate = arm.iterations.empty() ? NAN : static_cast<double>(arm.successes) / arm.iterations.size();
    std::vector<double> wins;
    for (double v : arm.iterations)
      if (v < cap_value) wins.push_back(v);
    const double med = median(arm.iterations);
    const MeanStd mw = mean_std(wins);
    summary_csv << arm.method << "," << arm.region << "," << arm.iterations.size() << "," << rate << ","
                << (med >= cap_value ? std::string("inf") : TableCell::format_real(med)) << ","
                << (mw.count ? TableCell::format_real(mw.mean) : std::string()) << "\n";
    js["arms"].push_back({{"method", arm.method},
                          {"region", arm.region},
                          {"success_rate", rate},
                          {"median_iterations", med >= cap_value ? nlohmann::json("inf") : nlohmann::json(med)},
                          {"mean_iterations_of_successes", mw.count ? nlohmann::json(mw.mean) : nlohmann::json()},
                          {"iterations", arm.iterations}});
    rows.push_back({arm.method, arm.region, static_cast<long long>(arm.iterations.size()), rate,
                    med >= cap_value ? TableCell(">" + std::to_string(st.settings.max_iterations)) : TableCell(med),
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
    histograms.push_back(svg_histogram(arm.iterations, std::min(51, st.settings.max_iterations + 2), o));
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
  cmd->add_option("--mask-method", st->methods, "Methods whose maps give the masks (comma list)")->delimiter(',');
  cmd->add_option("--region", st->regions, "inside, outside, random (comma list)")->delimiter(',');
  cmd->add_option("--area", st->area, "Share of patches in the mask (default 0.1)");
  cmd->add_option("--eps", st->settings.epsilon, "Step size in [0,1] pixel units (default 1/255)");
  cmd->add_option("--max-iter", st->settings.max_iterations, "Most steps per image (default 100)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--target", st->settings.target, "Targeted attack towards this class (default: untargeted)");
  cmd->add_option("--limit", st->limit, "Only the first N images (after --shuffle); 0 = all");
  cmd->add_flag("--shuffle", st->shuffle, "Shuffle the data set first (with --seed)");
  cmd->add_option("--seed", st->seed, "Seed of --shuffle and of the random masks (default 0)");
  cmd->add_option("--threads", st->threads, "LibTorch threads (default: every core)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--save", st->save, "Adversarial images saved (the first N images, every arm; default 4)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("-q,--quiet", st->quiet, "No progress bar or summary on the terminal");
  cmd->add_option("-o,--output", st->output, "Output folder")->required();
  cmd->callback([st, &action] { action = [st] { run_fgsm(*st); }; });
}

}  // namespace attnlens::cli
