// `attnlens explain`: explanations of a model's decisions on images, as overlays, arrays, CSV, JSON and one HTML page.
#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/model_inputs.hpp"
#include "cli/text_commands.hpp"
#include "core/heads.hpp"
#include "explain/image_explainer.hpp"
#include "io/array_writer.hpp"
#include "io/atomic_file.hpp"
#include "viz/html.hpp"
#include "viz/overlay.hpp"

namespace attnlens::cli {

namespace {

namespace fs = std::filesystem;

struct ExplainState {
  std::vector<std::string> inputs;
  ModelOptions model;
  std::vector<std::string> methods{"rollout"};
  int category = -1;
  MethodSettings settings;
  std::string fusion = "mean", mode = "abnar", residual = "half";
  double threshold = 0.0;
  std::string output;
  bool quiet = false;
  TextExplainOptions text;  ///< --text/--texts: explain a BERT classifier instead
  std::string atman_threshold = "0.6";
};

Array mean_over_heads(const Array& maps) {  // [H,gh,gw] -> [gh,gw]
  const int64_t h = maps.shape[0], g = maps.size() / h;
  Array out({maps.shape[1], maps.shape[2]});
  for (int64_t k = 0; k < h; ++k)
    for (int64_t i = 0; i < g; ++i) out.data[i] += maps.data[k * g + i] / static_cast<double>(h);
  return out;
}

std::string stem_of(const std::string& path, size_t index) {
  std::ostringstream s;
  s << std::setw(3) << std::setfill('0') << index << "_" << fs::path(path).stem().string();
  return s.str();
}

void run_explain(ExplainState& st) {
  st.settings.steps = st.text.steps;
  resolve_relevance_options(st.settings, st.atman_threshold);
  if (st.text.active()) {
    if (!st.inputs.empty()) throw InputError("give images or --text/--texts, not both");
    st.text.model.model = st.model.model;
    st.text.model.device = st.model.device;
    run_explain_text(st.text, st.methods, st.settings, st.category, st.output, st.quiet);
    return;
  }
  if (st.inputs.empty()) throw InputError("nothing to explain: give image files or folders, or --text/--texts");
  // Everything that can be checked before the model runs is checked first, so bad options write nothing.
  if (st.output.empty()) throw InputError("-o DIR is required");
  MethodSettings& s = st.settings;
  s.fusion = st.fusion == "max" ? HeadFusion::Max : st.fusion == "min" ? HeadFusion::Min : HeadFusion::Mean;
  s.rollout_mode = st.mode == "vit-explain-reference" ? RolloutMode::VitExplainReference
                   : st.mode == "chefer"              ? RolloutMode::Chefer
                                                      : RolloutMode::Abnar;
  s.residual = st.residual == "none" ? Residual::None : Residual::Half;
  const bool all = st.methods.size() == 1 && st.methods[0] == "all";
  if (all) st.methods = image_method_names();
  ImageExplainer explainer(st.methods, s);
  if (st.threshold < 0.0 || st.threshold > 1.0) throw InputError("--threshold must be in (0, 1] (0 = no masks)");

  const std::unique_ptr<ImageClassifier> model = load_model(st.model);
  const ImageModelConfig& c = model->config();
  if (all && image_method_names(c) != st.methods) {  // "all": the methods that apply to this architecture
    st.methods = image_method_names(c);
    explainer = ImageExplainer(st.methods, s);
  }
  const TokenLayout layout = token_layout(c);
  explainer.check(c);
  if (s.query_row < 0 || s.query_row >= c.tokens()) throw InputError("--query-row is out of range for this model");
  if (st.category >= c.num_classes) {
    throw InputError("--category " + std::to_string(st.category) + " is out of range: the model has " +
                     std::to_string(c.num_classes) + " classes");
  }
  const Preprocess pre = resolve_preprocess(st.model, c);
  const auto paths = expand_image_paths(st.inputs);
  std::vector<ModelImage> images;
  for (const auto& p : paths) images.push_back(load_model_image(p, pre, c));

  const fs::path out = st.output;
  std::ostringstream csv;
  csv << "image,method,class,label";
  for (int i = 0; i < layout.patches(); ++i) csv << ",p" << i;
  csv << "\n";
  nlohmann::json summary{{"model", st.model.model}, {"methods", st.methods}, {"images", nlohmann::json::array()}};
  HtmlReport page("attnlens explain");
  page.paragraph("Model: " + (st.model.model.empty() ? std::string("bundled fmnist-vit") : st.model.model) +
                 ". Methods: " + [&] {
                   std::string m;
                   for (const auto& n : st.methods) m += (m.empty() ? "" : ", ") + n;
                   return m;
                 }());
  std::vector<std::pair<std::string, std::string>> files;  // (path, content), written only when all succeeded
  ProgressBar bar("explain", "images", !st.quiet);
  double capture_seconds = 0.0;
  std::map<std::string, double> method_seconds;
  for (size_t begin = 0; begin < images.size(); begin += st.model.batch) {
    const size_t end = std::min(images.size(), begin + static_cast<size_t>(st.model.batch));
    const auto t0 = std::chrono::steady_clock::now();
    // One forward and, when a method needs gradients, one backward for every method of the batch.
    const torch::Tensor batch = stack_batch(images, begin, end);
    const ImageCapture cap = explainer.capture(*model, batch, st.category);
    capture_seconds += seconds_since(t0);
    for (size_t i = begin; i < end; ++i) {
      const int64_t b = static_cast<int64_t>(i - begin);
      const int64_t predicted = c.num_classes > 0 ? cap.logits[b].argmax().item<int64_t>() : -1;
      const int64_t target = st.category >= 0 ? st.category : predicted;
      const AttentionRecord record = explainer.record(cap, b, layout);
      const std::string stem = stem_of(images[i].path, i);
      nlohmann::json entry{{"image", images[i].path},
                           {"predicted", predicted},
                           {"target", target},
                           {"label", label_of(c, target)},
                           {"outputs", nlohmann::json::object()}};
      std::vector<HtmlFigure> figures;
      // Small inputs (the bundled 56x56 canvases) are shown larger; the PNG files keep the model's resolution.
      const int display_width = images[i].rgb.empty() || images[i].rgb.cols >= 160 ? 0 : 160;
      if (!images[i].rgb.empty())
        figures.push_back({png_data_uri(rgb_to_bgr(images[i].rgb)), "input: " + label_of(c, predicted), display_width});
      for (const MethodMap& m : explainer.explain(*model, cap, batch, b, target, layout)) {
        const Array& map = m.map;
        method_seconds[m.method] += m.seconds;
        const Array mask = map.rank() == 3 ? mean_over_heads(map) : map;
        const std::string base = stem + "_" + m.method;
        files.emplace_back(
            (out / (base + ".npy")).string(),
            encode_array(map, map.rank() == 3 ? DimNames{"head", "row", "col"} : DimNames{"row", "col"}, ".npy"));
        entry["outputs"][m.method] = base + ".npy";
        csv << csv_field(images[i].path) << "," << m.method << "," << target << "," << csv_field(label_of(c, target));
        for (double v : mask.data) csv << "," << fmt_number(v);
        csv << "\n";
        if (images[i].rgb.empty()) continue;  // a preprocessed tensor has no picture to draw on
        // vit-explain's pipeline (/max) for the attention and rollout maps it defined; Chefer's (min-max) for his
        // relevance, and min-max for flow too: flow values are often within a few percent of each other, so /max
        // would paint the whole image one colour.
        // The relevance methods that followed Chefer's are shown his way too.
        const std::string& name = m.method;
        const bool chefer_style = name == "chefer" || is_model_method(name) || name == "grad-sam";
        const bool minmax = chefer_style || name == "flow" || name == "flow-metzger";
        cv::Mat picture = chefer_style ? overlay_chefer(images[i].rgb, scale_for_display(mask, true))
                                           : overlay_vit_explain(images[i].rgb, scale_for_display(mask, minmax));
        files.emplace_back((out / (base + ".png")).string(), encode_png(picture));
        figures.push_back({png_data_uri(picture), m.method, display_width});
        if (map.rank() == 3) {  // per-head grid, with DINO's mass-threshold masks when asked
          const Array masks = st.threshold > 0 ? threshold_masks(map, st.threshold) : Array();
          const cv::Mat grid = head_grid(map, {}, masks);
          files.emplace_back((out / (base + "_grid.png")).string(), encode_png(grid));
          const int layer = resolve_layer(s.layer, c.depth, "--layer");
          const std::string layer_name = layer == c.depth - 1 ? "last layer" : "layer " + std::to_string(layer);
          figures.push_back({png_data_uri(grid), "heads, " + layer_name, 0});
        }
      }
      summary["images"].push_back(entry);
      page.section(fs::path(images[i].path).filename().string() + ": predicted " + label_of(c, predicted));
      if (!figures.empty()) page.images(figures);
      bar.update(static_cast<long long>(i + 1), static_cast<long long>(images.size()));
    }
  }
  bar.finish();
  summary["seconds"] = {{"forward_backward", capture_seconds}};
  for (const auto& [name, secs] : method_seconds) summary["seconds"][name] = secs;
  files.emplace_back((out / "heatmaps.csv").string(), csv.str());
  files.emplace_back((out / "summary.json").string(), summary.dump(2));
  files.emplace_back((out / "index.html").string(), page.html());
  for (const auto& [path, content] : files) write_file_atomic(path, content);
  if (!st.quiet) {
    std::cout << "explained " << images.size() << " image(s) with " << explainer.names().size() << " method(s) in "
              << fmt_number(capture_seconds) << " s of model time";
    for (const auto& [name, secs] : method_seconds) std::cout << ", " << name << " " << fmt_number(secs) << " s";
    std::cout << "\noutputs written to " << out.string() << " (open index.html)" << std::endl;
  }
}

}  // namespace

void add_explain_command(CLI::App& app, Action& action) {
  auto st = std::make_shared<ExplainState>();
  CLI::App* sub = app.add_subcommand(
      "explain",
      "Explain an image model's decision on images (ViT, DeiT, DINO, DeiT III, DINOv2, CLIP over --labels): per "
      "image and method an overlay PNG, the patch map (.npy, patches only), one CSV row (heatmaps.csv), summary.json and one HTML page (index.html) with every overlay side by side. With "
      "--text/--texts, explain a BERT classifier's decision on texts instead: tokens shaded per method (HTML), "
      "tokens.csv, summary.json, AttAttr tensors (.npy)");
  sub->add_option("images", st->inputs, "Image files, folders of images, or preprocessed [3,H,W] .npy");
  add_model_options(sub, st->model);
  sub->add_option("--method", st->methods,
                  "Methods, comma-separated, or all: raw, rollout, grad-rollout, flow, flow-metzger, chefer, grad-sam, "
                  "heads (default rollout), and the ones that run the model again: agcam, bi-attn, bi-attn-token, "
                  "atman, attnlrp, cp-lrp, chefer-lrp (ViT/DeiT and DeiT III only: all leaves it out elsewhere); "
                  "for texts also attattr, blankout, input-x-gradient (not heads). All attention methods share one "
                  "forward (and one backward)")
      ->delimiter(',');
  sub->add_option("--category", st->category, "Class to explain (default: the predicted class)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--query-row", st->settings.query_row, "Explained token (default 0 = CLS; 1 = distillation token)");
  sub->add_option("--fusion", st->fusion, "Head fusion for raw/rollout: mean (default), max, min")
      ->check(CLI::IsMember({"mean", "max", "min"}));
  sub->add_option("--discard-ratio", st->settings.discard_ratio, "Rollout discard ratio in [0,1) (default 0)");
  sub->add_option("--grad-discard-ratio", st->settings.grad_discard_ratio,
                  "grad-rollout discard ratio in [0,1) (default 0.9, vit-explain's)");
  sub->add_option("--mode", st->mode, "Rollout mode: abnar (default), vit-explain-reference, chefer (spec 1)")
      ->check(CLI::IsMember({"abnar", "vit-explain-reference", "chefer"}));
  sub->add_flag("--reference", st->settings.reference,
                "grad-rollout as vit-explain computes it: reversed layer pairing, score gradients, column quirk "
                "(spec 2); atman with the reference code's sign (negative = important); default: the fixed forms");
  sub->add_option("--residual", st->residual, "Residual for rollout/flow: half (default) or none")
      ->check(CLI::IsMember({"half", "none"}));
  sub->add_option("--start-layer", st->settings.start_layer, "First layer for rollout, chefer and chefer-lrp "
                  "(default 0)");
  sub->add_option("--layer", st->settings.layer, "Layer for raw and heads (default -1 = last)");
  sub->add_option("--grad-sam-axis", st->settings.grad_sam_axis,
                  "grad-sam: columns (default: a score per key token, the mean over query rows, as spec 20 reads the "
                  "paper) or rows (a score per query token, the mean over keys)")
      ->check(CLI::IsMember({"columns", "rows"}));
  sub->add_option("--threshold", st->threshold, "heads: also draw DINO mass-threshold masks at this share, e.g. 0.6");
  sub->add_option("-o,--output", st->output, "Output folder")->required();
  sub->add_flag("-q,--quiet", st->quiet, "No progress bar or summary lines");
  add_relevance_options(sub, st->settings, st->atman_threshold, /*with_steps=*/false);
  auto* text = sub->add_option_group("Text (BERT classifiers)");
  text->add_option("--text", st->text.texts,
                   "A text to explain (repeatable); --model is then a BERT folder "
                   "(default: the bundled data/models/sentiment-bert)");
  text->add_option("--texts", st->text.texts_file, "File with one text per line to explain");
  text->add_option("--label", st->text.label, "Gold label of the text(s), for --target gold")
      ->check(CLI::NonNegativeNumber);
  text->add_option("--target", st->text.target,
                   "Class AttAttr and the other methods explain: predicted (default) or gold (--label); "
                   "--category overrides both")
      ->check(CLI::IsMember({"predicted", "gold"}));
  sub->add_option("--steps", st->text.steps,
                  "Integration steps: attattr's m (default 20, the paper's), bi-attn's gradient path points (20)");
  text->add_option("--riemann", st->text.riemann,
                   "attattr: right (default, the paper: alpha = k/m, k = 1..m) or left (the reference code: "
                   "k = 0..m-1)")
      ->check(CLI::IsMember({"right", "left"}));
  text->add_option("--ig-batch", st->text.ig_batch, "attattr: alphas per forward/backward (default 0 = all m)")
      ->check(CLI::NonNegativeNumber);
  text->add_option("--blank-token", st->text.blank_token,
                   "blankout: replacement token: mask (default; [MASK] or <mask>), unk, or any vocabulary token");
  text->add_flag("--column-max", st->text.column_max,
                 "raw/rollout/flow: maximum over all query rows instead of the [CLS] row (Abnar & Zuidema's SST "
                 "script)");
  text->add_flag("--save-attention", st->text.save_attention, "Also write each text's attention [L,H,T,T] (.npy)");
  text->add_option("--max-length", st->text.model.max_length,
                   "Tokens per text incl. [CLS]/[SEP]; longer texts are truncated with a warning")
      ->check(CLI::NonNegativeNumber);
  sub->callback([st, &action] { action = [st] { run_explain(*st); }; });

  // `heads`: explain with the per-head method only, DINO's masks on by default.
  auto hs = std::make_shared<ExplainState>();
  hs->methods = {"heads"};
  hs->threshold = 0.6;
  CLI::App* heads = app.add_subcommand(
      "heads",
      "Per-head attention maps of the explained token at one layer (default: the last) as a PNG grid with DINO's "
      "mass-threshold masks (spec 7), plus the maps [H,gh,gw] (.npy) and an HTML page; = explain --method heads");
  heads->add_option("images", hs->inputs, "Image files, folders of images, or preprocessed [3,H,W] .npy")->required();
  add_model_options(heads, hs->model);
  heads->add_option("--layer", hs->settings.layer, "Layer (default -1 = last)");
  heads->add_option("--query-row", hs->settings.query_row, "Explained token (default 0 = CLS)");
  heads->add_option("--threshold", hs->threshold, "Mask share of each head's mass (default 0.6, DINO's video value)");
  heads->add_option("-o,--output", hs->output, "Output folder")->required();
  heads->add_flag("-q,--quiet", hs->quiet, "No progress bar or summary lines");
  heads->callback([hs, &action] { action = [hs] { run_explain(*hs); }; });
}

}  // namespace attnlens::cli
