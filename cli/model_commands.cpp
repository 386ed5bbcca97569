// Model-backed subcommands: `attnlens predict` and `attnlens capture`.
#include <CLI/CLI.hpp>

#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/attention_commands.hpp"
#include "cli/model_inputs.hpp"
#include "io/array_writer.hpp"

namespace attnlens::cli {

namespace {

/// A [B, ...] float tensor as a double Array.
Array to_array(const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  Array a(c.sizes().vec());
  std::copy(c.data_ptr<double>(), c.data_ptr<double>() + c.numel(), a.data.begin());
  return a;
}

struct PredictState {
  std::vector<std::string> inputs;
  ModelOptions model;
  int top_k = 5;
  bool json = false;
};

void run_predict(const PredictState& st) {
  const VisionTransformer model = load_model(st.model);
  const VitConfig& c = model.config();
  if (c.num_classes == 0) throw InputError("this model has no classifier head (a bare backbone): nothing to predict");
  const Preprocess pre = resolve_preprocess(st.model, c);
  const auto paths = expand_image_paths(st.inputs);
  std::vector<ModelImage> images;
  for (const auto& p : paths) images.push_back(load_model_image(p, pre, c));
  const int k = std::min<int>(st.top_k, c.num_classes);
  nlohmann::json out = nlohmann::json::array();
  for (size_t begin = 0; begin < images.size(); begin += st.model.batch) {
    const size_t end = std::min(images.size(), begin + static_cast<size_t>(st.model.batch));
    const torch::Tensor logits = model.forward(stack_batch(images, begin, end)).to(torch::kCPU);
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
  ModelOptions model;
  std::string output;
  std::string logits_output;
  std::string grad_output;
  int category = -1;
  bool quiet = false;
};

void run_capture(const CaptureState& st) {
  check_output_path(st.output, "-o");
  if (!st.logits_output.empty()) check_output_path(st.logits_output, "--logits-output");
  const VisionTransformer model = load_model(st.model);
  const VitConfig& c = model.config();
  if (!st.grad_output.empty()) check_output_path(st.grad_output, "--grad-output");
  if (st.category >= 0 && st.category >= c.num_classes)
    throw InputError("--category " + std::to_string(st.category) + " is out of range: the model has " +
                     std::to_string(c.num_classes) + " classes");
  const ModelImage image = load_model_image(st.input, resolve_preprocess(st.model, c), c);
  const bool gradients = !st.grad_output.empty();
  if (gradients && c.num_classes == 0) throw InputError("--grad-output needs a classifier head; this is a backbone");
  const VitCapture cap = model.capture(image.tensor.unsqueeze(0),
                                       gradients ? std::vector<std::int64_t>{st.category} : std::vector<std::int64_t>{});
  auto first_image = [](const std::vector<torch::Tensor>& per_layer) {  // [L, H, N, N] of image 0
    std::vector<torch::Tensor> layers;
    for (const auto& t : per_layer) layers.push_back(t[0]);
    return to_array(torch::stack(layers));
  };
  const Array attention = first_image(cap.attention);
  const Array logits = to_array(cap.logits[0]);
  const Array grads = gradients ? first_image(cap.attention_grad) : Array();
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
}

}  // namespace

void add_model_commands(CLI::App& app, Action& action) {
  {
    auto st = std::make_shared<PredictState>();
    CLI::App* sub = app.add_subcommand(
        "predict", "Classify images with a ViT/DeiT model: top-k classes with label names, logits and probabilities");
    sub->add_option("images", st->inputs, "Image files (PNG, JPEG, ...), folders of images, or preprocessed [3,H,W] .npy")
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
        "Run a model on one image and save every layer's post-softmax attention as [L,H,N,N] .npy, the input of "
        "all 'attnlens attention' methods");
    sub->add_option("image", st->input, "Image file or preprocessed [3,H,W] .npy")->required();
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
