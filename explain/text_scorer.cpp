// TextScorer: every text method on one encoded text, the attention-graph ones from one shared capture.
#include <algorithm>
#include <chrono>

#include "explain/text_methods.hpp"
#include "models/arrays.hpp"

namespace attnlens {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool runs_the_model(const std::string& name) {
  return name == "attattr" || name == "blankout" || name == "input-x-gradient";
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

const std::vector<std::string>& text_method_names() {
  static const std::vector<std::string> names = {
      "raw",      "rollout",          "grad-rollout", "flow",    "flow-metzger",  "chefer", "grad-sam",
      "attattr",  "blankout",         "input-x-gradient",
      "agcam",    "bi-attn",          "bi-attn-token", "atman",  "attnlrp",       "cp-lrp",
      "chefer-lrp"};
  return names;
}

TextScorer::TextScorer(const TextModel& model, std::vector<std::string> methods, const MethodSettings& settings,
                       const AttAttrOptions& attattr, std::int64_t blank_id)
    : model_(model), methods_(std::move(methods)), attattr_(attattr), blank_id_(blank_id) {
  const auto& known = text_method_names();
  for (const auto& m : methods_) {
    if (m == "random") continue;
    if (m == "heads") throw InputError("method heads is for images; text methods: " + join(known));
    if (std::find(known.begin(), known.end(), m) == known.end())
      throw InputError("unknown text method '" + m + "' (known: " + join(known) + ")");
    if (runs_the_model(m)) continue;
    if (is_model_method(m)) {
      relevance_.push_back(make_model_method(m, settings));
      continue;
    }
    graph_.push_back(make_method(m, settings));
    gradients_ |= graph_.back()->needs_gradients();
  }
}

TextScorer::Scores TextScorer::score(const EncodedText& e, std::int64_t target,
                                     std::map<std::string, double>* seconds) const {
  Scores out;
  const auto t0 = std::chrono::steady_clock::now();
  AttentionRecord record;
  record.layout = TokenLayout{0, 1, static_cast<int>(e.batch.length())};  // every token, [CLS]/[SEP] included
  const TextCapture cap =
      gradients_ ? model_.model->capture(e.batch, {target}, TargetKind::Logit) : model_.model->capture(e.batch);
  record.attention = image_layers(cap.attention, 0);
  if (gradients_) {
    record.attention_grad = image_layers(cap.attention_grad, 0);
    record.scores_grad = image_layers(cap.scores_grad, 0);
  }
  out.probabilities = class_probabilities(cap.logits);
  out.target = target >= 0
                   ? target
                   : std::max_element(out.probabilities.begin(), out.probabilities.end()) - out.probabilities.begin();
  target = out.target;
  if (seconds) (*seconds)["forward_backward"] += seconds_since(t0);
  for (const auto& name : methods_) {
    if (name == "random") continue;
    const auto t1 = std::chrono::steady_clock::now();
    std::vector<double>& scores = out.by_method[name];
    if (name == "attattr") {
      out.attattr = attattr(*model_.model, e.batch, target, attattr_);
      scores = attattr_token_scores(out.attattr);
    } else if (name == "blankout") {
      scores = token_blankout(*model_.model, e.batch, target, blank_id_);
    } else if (name == "input-x-gradient") {
      scores = input_x_gradient(*model_.model, e.batch, target);
    } else if (is_model_method(name)) {
      for (const auto& m : relevance_)
        if (m->name() == name) scores = m->explain_text(*model_.model, e.batch, target);
    } else {
      for (const auto& m : graph_)
        if (m->name() == name) scores = m->explain(record).data;
    }
    if (seconds) (*seconds)[name] += seconds_since(t1);
  }
  out.attention = std::move(record.attention);
  return out;
}

}  // namespace attnlens
