// Model-backed subcommands: `attnlens predict` and `attnlens capture`.
#include <CLI/CLI.hpp>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/attention_commands.hpp"
#include "cli/model_inputs.hpp"
#include "cli/text_commands.hpp"
#include "core/distance.hpp"
#include "io/array_writer.hpp"
#include "io/atomic_file.hpp"
#include "models/arrays.hpp"
#include "viz/overlay.hpp"
#include "viz/svg.hpp"

namespace attnlens::cli {

namespace {

struct PredictState {
  std::vector<std::string> inputs;
  ModelOptions model;
  int top_k = 5;
  bool json = false;
};

void run_predict(const PredictState& st) {
  const std::unique_ptr<ImageClassifier> model = load_model(st.model);
  const ImageModelConfig& c = model->config();
  if (c.num_classes == 0) throw InputError("this model has no classifier head (a bare backbone): nothing to predict");
  const Preprocess pre = resolve_preprocess(st.model, c);
  const auto paths = expand_image_paths(st.inputs);
  std::vector<ModelImage> images;
  for (const auto& p : paths) images.push_back(load_model_image(p, pre, c));
  const int k = std::min<int>(st.top_k, c.num_classes);
  nlohmann::json out = nlohmann::json::array();
  for (size_t begin = 0; begin < images.size(); begin += st.model.batch) {
    const size_t end = std::min(images.size(), begin + static_cast<size_t>(st.model.batch));
    const torch::Tensor logits = model->forward(stack_batch(images, begin, end)).to(torch::kCPU);
    const torch::Tensor probs = torch::softmax(logits.to(torch::kFloat64), 1);
    const auto top = std::get<1>(probs.topk(k, 1));
    for (size_t i = begin; i < end; ++i) {
      nlohmann::json entry{{"image", images[i].path}, {"top", nlohmann::json::array()}};
      if (!st.json) std::cout << images[i].path << "\n";
      for (int r = 0; r < k; ++r) {
        const std::int64_t cls = top[i - begin][r].item<std::int64_t>();
        const double logit = logits[i - begin][cls].item<double>(), p = probs[i - begin][cls].item<double>();
        entry["top"].push_back({{"class", cls}, {"label", label_of(c, cls)}, {"logit", logit}, {"probability", p}});
        if (!st.json)
          std::cout << "  " << std::setw(4) << cls << "  " << std::left << std::setw(24) << label_of(c, cls)
                    << std::right << "  p = " << std::fixed << std::setprecision(4) << p << "  logit "
                    << std::setprecision(4) << logit << std::defaultfloat << "\n";
      }
      out.push_back(entry);
    }
  }
  if (st.json) std::cout << out.dump(2) << std::endl;
}

struct CaptureState {
  std::string input;
  std::string text;  ///< --text: a BERT-family model's attention on this text instead of an image's
  ModelOptions model;
  std::string output;
  std::string logits_output;
  std::string grad_output;
  int category = -1;
  bool quiet = false;
};

/// capture --text: the attention stack [L,H,T,T] of a text classifier on one text ([CLS] and [SEP] included), its
/// gradient and logits, for the attention methods (which need no grid for it).
void run_capture_text(const CaptureState& st) {
  TextModelOptions options;
  options.model = st.model.model;
  options.device = st.model.device;
  const TextModel tm = open_text_model(options);
  const TextClassifierConfig& c = tm.model->config();
  if (st.category >= c.num_labels)
    throw InputError("--category " + std::to_string(st.category) + " is out of range: the model has " +
                     std::to_string(c.num_labels) + " classes");
  const EncodedText e = encode_text_or_warn(tm, st.text, st.quiet);
  const bool gradients = !st.grad_output.empty();
  const TextCapture cap =
      gradients ? tm.model->capture(e.batch, {st.category}, TargetKind::Logit) : tm.model->capture(e.batch);
  const Array attention = image_layers(cap.attention, 0);
  const Array grads = gradients ? image_layers(cap.attention_grad, 0) : Array();
  const Array logits = to_array(cap.logits[0]);
  write_array(st.output, attention, {"layer", "head", "query", "key"});
  report_written(st.output, attention, st.quiet);
  if (gradients) {
    write_array(st.grad_output, grads, {"layer", "head", "query", "key"});
    report_written(st.grad_output, grads, st.quiet);
  }
  if (!st.logits_output.empty()) {
    write_array(st.logits_output, logits, {"class"});
    report_written(st.logits_output, logits, st.quiet);
  }
  if (!st.quiet) {
    std::cout << "tokens:";
    for (const auto& t : e.encoding.tokens) std::cout << " " << t;
    std::cout << std::endl;
  }
}

void run_capture(const CaptureState& st) {
  check_output_path(st.output, "-o");
  if (!st.logits_output.empty()) check_output_path(st.logits_output, "--logits-output");
  if (!st.grad_output.empty()) check_output_path(st.grad_output, "--grad-output");
  if (!st.text.empty() || st.input.empty()) {
    if (!st.input.empty()) throw InputError("give an image or --text, not both");
    if (st.text.empty()) throw InputError("nothing to capture: give an image file or --text");
    run_capture_text(st);
    return;
  }
  const std::unique_ptr<ImageClassifier> model = load_model(st.model);
  const ImageModelConfig& c = model->config();
  if (!st.grad_output.empty()) check_output_path(st.grad_output, "--grad-output");
  if (st.category >= 0 && st.category >= c.num_classes)
    throw InputError("--category " + std::to_string(st.category) + " is out of range: the model has " +
                     std::to_string(c.num_classes) + " classes");
  const ModelImage image = load_model_image(st.input, resolve_preprocess(st.model, c), c);
  const bool gradients = !st.grad_output.empty();
  if (gradients && c.num_classes == 0) throw InputError("--grad-output needs a classifier head; this is a backbone");
  const ImageCapture cap = model->capture(
      image.tensor.unsqueeze(0), gradients ? std::vector<std::int64_t>{st.category} : std::vector<std::int64_t>{});
  const Array attention = image_layers(cap.attention, 0);  // [L, H, N, N]
  const Array logits = to_array(cap.logits[0]);
  const Array grads = gradients ? image_layers(cap.attention_grad, 0) : Array();
  write_array(st.output, attention, {"layer", "head", "query", "key"});
  report_written(st.output, attention, st.quiet);
  if (gradients) {
    write_array(st.grad_output, grads, {"layer", "head", "query", "key"});
    report_written(st.grad_output, grads, st.quiet);
  }
  if (!st.logits_output.empty()) {
    write_array(st.logits_output, logits, {"class"});
    report_written(st.logits_output, logits, st.quiet);
  }
  if (!st.quiet)  // the attention methods need the layout the stack itself cannot tell
    std::cout << "tokens: " << c.prefix_tokens() << " prefix (" << c.prefix_description() << ") + " << c.grid_h()
              << "x" << c.grid_w() << " patches; attnlens attention takes them as --prefix-tokens "
              << c.prefix_tokens() << " --grid " << c.grid_h() << "x" << c.grid_w() << std::endl;
}

struct DistanceState {
  std::vector<std::string> inputs;
  ModelOptions model;
  bool renormalize = false;
  std::string output;
  bool quiet = false;
};

// Mean attention distance per layer and head, averaged over images (spec 6; the ViT paper's Fig. 7).
void run_distance(const DistanceState& st) {
  const std::unique_ptr<ImageClassifier> model = load_model(st.model);
  const ImageModelConfig& c = model->config();
  const Preprocess pre = resolve_preprocess(st.model, c);
  const auto paths = expand_image_paths(st.inputs);
  DistanceOptions options;
  options.layout = TokenLayout::resolve(c.tokens(), c.prefix_tokens(), c.grid_h(), c.grid_w());
  options.patch_size = c.patch_size;
  options.renormalize = st.renormalize;
  Array mean({c.depth, c.num_heads});
  ProgressBar bar("distance", "images", !st.quiet);
  for (size_t begin = 0; begin < paths.size(); begin += st.model.batch) {
    const size_t end = std::min(paths.size(), begin + static_cast<size_t>(st.model.batch));
    std::vector<ModelImage> images;
    for (size_t i = begin; i < end; ++i) images.push_back(load_model_image(paths[i], pre, c));
    const ImageCapture cap = model->capture(stack_batch(images, 0, images.size()));
    for (int64_t b = 0; b < static_cast<int64_t>(images.size()); ++b) {
      const Array attention = image_layers(cap.attention, b);
      const Array d = mean_attention_distance(AttentionView::of(attention), options);
      for (size_t k = 0; k < d.data.size(); ++k) mean.data[k] += d.data[k] / static_cast<double>(paths.size());
    }
    bar.update(static_cast<long long>(end), static_cast<long long>(paths.size()));
  }
  bar.finish();
  // Everything computed: now the files, so a failure above leaves none behind.
  const std::filesystem::path out = st.output;
  PlotOptions po;
  po.title = "Mean attention distance (" + std::to_string(paths.size()) + " image" + (paths.size() == 1 ? "" : "s") +
             ", patch " + std::to_string(c.patch_size) + " px)";
  po.x_label = "layer";
  po.y_label = "mean attention distance (pixels)";
  po.x_integer_ticks = true;
  po.y_min = 0.0;
  po.y_max = 1.1 * *std::max_element(mean.data.begin(), mean.data.end());  // headroom above the highest head
  Plot plot(po);
  for (int h = 0; h < c.num_heads; ++h) {
    std::vector<double> x, y;
    for (int l = 0; l < c.depth; ++l) {
      x.push_back(l);
      y.push_back(mean.data[static_cast<size_t>(l) * c.num_heads + h]);
    }
    plot.scatter("head " + std::to_string(h), x, y);
  }
  write_array((out / "distance.csv").string(), mean, {"layer", "head"});
  write_array((out / "distance.npy").string(), mean, {"layer", "head"});
  write_file_atomic((out / "distance.svg").string(), plot.svg());
  if (!st.quiet) {
    print_distance_table(mean, c.patch_size);
    std::cout << "outputs written to " << out.string() << " (distance.csv, distance.npy, distance.svg)" << std::endl;
  }
}

struct QueryState {
  std::string input;
  ModelOptions model;
  std::string query_patch;  ///< "r,c" on the patch grid
  std::string output;
  bool quiet = false;
};

// Where one patch looks: its raw attention row over the patch grid, per layer and head.
void run_query(const QueryState& st) {
  int row = -1, col = -1;
  char comma = 0;
  std::istringstream parse(st.query_patch);
  if (!(parse >> row >> comma >> col) || comma != ',' || !parse.eof())
    throw InputError("--query-patch must be ROW,COL on the patch grid, got '" + st.query_patch + "'");
  const std::unique_ptr<ImageClassifier> model = load_model(st.model);
  const ImageModelConfig& c = model->config();
  if (row < 0 || row >= c.grid_h() || col < 0 || col >= c.grid_w())
    throw InputError("--query-patch " + st.query_patch + " is outside the " + std::to_string(c.grid_h()) + "x" +
                     std::to_string(c.grid_w()) + " patch grid");
  const ModelImage image = load_model_image(st.input, resolve_preprocess(st.model, c), c);
  const ImageCapture cap = model->capture(image.tensor.unsqueeze(0));
  const int token = c.prefix_tokens() + row * c.grid_w() + col, patches = c.grid_h() * c.grid_w();
  Array maps({c.depth, c.num_heads, c.grid_h(), c.grid_w()});
  std::vector<std::string> titles;
  for (int l = 0; l < c.depth; ++l) {
    const Array layer = to_array(cap.attention[l][0]);  // [H, N, N]
    const std::int64_t n = layer.shape[1];
    for (int h = 0; h < c.num_heads; ++h) {
      const double* src = layer.data.data() + (static_cast<size_t>(h) * n + token) * n + c.prefix_tokens();
      std::copy(src, src + patches, maps.data.begin() + (static_cast<size_t>(l) * c.num_heads + h) * patches);
      titles.push_back("L" + std::to_string(l) + " h" + std::to_string(h));
    }
  }
  Array flat = maps;  // the grid wants [maps, gh, gw]: rows = layers, columns = heads
  flat.shape = {static_cast<std::int64_t>(c.depth) * c.num_heads, c.grid_h(), c.grid_w()};
  HeadGridOptions grid;
  grid.columns = c.num_heads;
  grid.cell = 96;
  const std::string png = encode_png(head_grid(flat, titles, Array(), grid));
  const std::filesystem::path out = st.output;
  write_array((out / "query_attention.npy").string(), maps, {"layer", "head", "row", "col"});
  write_file_atomic((out / "query_attention.png").string(), png);
  if (!st.quiet)
    std::cout << "attention of patch (" << row << "," << col << ") = token " << token << ": "
              << (out / "query_attention.npy").string() << " " << maps.shape_string()
              << " and query_attention.png (rows = layers, columns = heads)" << std::endl;
}

}  // namespace

void add_model_commands(CLI::App& app, Action& action) {
  {
    auto st = std::make_shared<QueryState>();
    CLI::App* sub = app.add_subcommand(
        "query",
        "Raw attention of one query patch over the image, per layer and head: query_attention.npy [L,H,gh,gw] and "
        "a PNG grid (rows = layers, columns = heads)");
    sub->add_option("image", st->input, "Image file or preprocessed [3,H,W] .npy")->required();
    add_model_options(sub, st->model);
    sub->add_option("--query-patch", st->query_patch, "ROW,COL of the query patch on the grid, 0-based")->required();
    sub->add_option("-o,--output", st->output, "Output folder")->required();
    sub->add_flag("-q,--quiet", st->quiet, "No summary line");
    sub->callback([st, &action] { action = [st] { run_query(*st); }; });
  }
  {
    auto st = std::make_shared<DistanceState>();
    CLI::App* sub = app.add_subcommand(
        "distance",
        "Mean attention distance per layer and head in input pixels, averaged over images (spec 6; Dosovitskiy et "
        "al. Fig. 7): distance.csv/.npy [L,H] and distance.svg (layer vs distance, one dot per head)");
    sub->add_option("images", st->inputs, "Image files, folders of images, or preprocessed [3,H,W] .npy")->required();
    add_model_options(sub, st->model);
    sub->add_flag("--renormalize", st->renormalize,
                  "Re-normalise each query's patch attention after dropping the prefix (default: reference)");
    sub->add_option("-o,--output", st->output, "Output folder")->required();
    sub->add_flag("-q,--quiet", st->quiet, "No progress bar or table");
    sub->callback([st, &action] { action = [st] { run_distance(*st); }; });
  }
  {
    auto st = std::make_shared<PredictState>();
    CLI::App* sub = app.add_subcommand(
        "predict",
        "Classify images with an image model (ViT, DeiT, DINO, DeiT III, DINOv2; CLIP zero-shot over --labels): "
        "top-k classes with label names, logits and probabilities");
    sub->add_option("images", st->inputs,
                    "Image files (PNG, JPEG, ...), folders of images, or preprocessed [3,H,W] .npy")
        ->required();
    add_model_options(sub, st->model);
    sub->add_option("-k,--top-k", st->top_k, "How many classes per image (default 5)")->check(CLI::PositiveNumber);
    sub->add_flag("--json", st->json, "Print JSON instead of a table");
    sub->callback([st, &action] { action = [st] { run_predict(*st); }; });
  }
  {
    auto st = std::make_shared<CaptureState>();
    CLI::App* sub = app.add_subcommand(
        "capture",
        "Run a model on one image (or, with --text, a text classifier on one text) and save every layer's "
        "post-softmax attention as [L,H,N,N] .npy, the input of all 'attnlens attention' methods");
    sub->add_option("image", st->input, "Image file or preprocessed [3,H,W] .npy");
    sub->add_option("--text", st->text,
                    "Capture a text classifier's attention on this text instead ([L,H,T,T] over its T tokens, "
                    "[CLS] and [SEP] included; --model: a BERT folder, default the bundled sentiment model)");
    add_model_options(sub, st->model);
    sub->add_option("-o,--output", st->output, "Attention output (.npy, .csv or .json)")->required();
    sub->add_option("--logits-output", st->logits_output, "Also write the logits [C]");
    sub->add_option("--grad-output", st->grad_output,
                    "Also write d(logit of --category)/d(attention) for every layer, [L,H,N,N] (one backward pass)");
    sub->add_option("--category", st->category, "Class whose logit --grad-output differentiates (default: predicted)")
        ->check(CLI::NonNegativeNumber);
    sub->add_flag("-q,--quiet", st->quiet, "No 'wrote' lines");
    sub->callback([st, &action] { action = [st] { run_capture(*st); }; });
  }
}

}  // namespace attnlens::cli
