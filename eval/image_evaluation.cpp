#include "eval/image_evaluation.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "eval/metrics.hpp"
#include "models/arrays.hpp"

namespace attnlens {

namespace {

double elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

const std::vector<std::string>& EvaluationMetrics::names() {
  static const std::vector<std::string> n{"blankout", "deletion",     "insertion", "positive",
                                          "negative", "localization", "saco"};
  return n;
}

EvaluationMetrics EvaluationMetrics::parse(const std::string& list) {
  if (list == "all") return {};
  EvaluationMetrics m{false, false, false, false, false, false, false};
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string name = list.substr(start, comma - start);
    bool* flags[] = {&m.blankout, &m.deletion, &m.insertion, &m.positive, &m.negative, &m.localization, &m.saco};
    const auto it = std::find(names().begin(), names().end(), name);
    if (it == names().end()) {
      std::string known;
      for (const auto& k : names()) known += (known.empty() ? "" : ", ") + k;
      throw InputError("unknown metric '" + name + "' (known: " + known + ", or all)");
    }
    *flags[it - names().begin()] = true;
    start = comma + 1;
  }
  return m;
}

const std::vector<double>& curve_fractions() {
  static const std::vector<double> f = [] {
    std::vector<double> v;
    for (int i = 0; i <= 20; ++i) v.push_back(i / 20.0);
    return v;
  }();
  return f;
}

const std::vector<double>& perturbation_fractions() {
  static const std::vector<double> f{0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  return f;
}

ImageEvaluator::ImageEvaluator(const ImageClassifier& model, InputSpace space, EvaluationPlan plan)
    : model_(model), space_(space), plan_(std::move(plan)) {
  if (model.config().num_classes == 0)
    throw InputError("evaluation needs a classifier; this model is a backbone without classes");
  std::set<std::string> seen;
  for (const auto& name : plan_.methods) {
    if (name == "heads") throw InputError("method heads gives one map per head; evaluate scores one map per image");
    if (is_model_method(name)) {
      model_methods_.push_back(make_model_method(name, plan_.settings));
      model_methods_.back()->check(model.config());
      methods_.emplace_back();
    } else {
      methods_.push_back(make_method(name, plan_.settings));
      model_methods_.emplace_back();
      gradients_ |= methods_.back()->needs_gradients();
    }
    rows_.push_back(name);
  }
  for (const auto& name : plan_.baselines) {
    if (name != "random" && name != "centre")
      throw InputError("unknown baseline '" + name + "' (known: random, centre)");
    rows_.push_back(name);
  }
  if (plan_.metrics.blankout) rows_.push_back("blankout");
  for (const auto& r : rows_)
    if (!seen.insert(r).second) throw InputError("'" + r + "' is listed twice");
  if (!(plan_.top_share > 0.0 && plan_.top_share <= 1.0)) throw InputError("--top-share must be in (0, 1]");
}

std::vector<ImageScores> ImageEvaluator::evaluate(const std::vector<EvaluationImage>& images) const {
  if (images.empty()) return {};
  const ImageModelConfig& c = model_.config();
  const TokenLayout layout = TokenLayout::resolve(c.tokens(), c.prefix_tokens(), c.grid_h(), c.grid_w());
  const int patches = layout.patches();
  std::vector<ImageScores> out;
  for (const EvaluationImage& im : images) {
    // Each image has a pass of its own: batching changes the rounding of the attention in the last bits, and flow's
    // near-equal values then rank differently, so a resumed run would not reproduce the uninterrupted one. The
    // passes are a small part of the cost next to the perturbed copies.
    const torch::Tensor batch = im.tensor.unsqueeze(0);
    // The attention methods' pass, and the gradient methods' pass (forward + backward); each method is charged the
    // pass it needs, so the cost column compares what a user would pay for each method alone.
    auto t0 = std::chrono::steady_clock::now();
    const ImageCapture plain = model_.capture(batch);
    const double forward_ms = elapsed_ms(t0);
    ImageCapture with_grad;
    double backward_ms = 0.0;
    if (gradients_) {
      t0 = std::chrono::steady_clock::now();
      with_grad = model_.capture(batch, {-1});
      backward_ms = elapsed_ms(t0);
    }
    const torch::Tensor probabilities = torch::softmax(plain.logits.to(torch::kCPU).to(torch::kFloat64), 1);
    ImageScores scores;
    scores.index = im.index;
    scores.id = im.id;
    scores.label = im.label;
    scores.predicted = probabilities[0].argmax().item<std::int64_t>();
    scores.probability = probabilities[0][scores.predicted].item<double>();
    const std::int64_t truth = im.label >= 0 ? im.label : scores.predicted;

    AttentionRecord plain_record, grad_record;
    plain_record.layout = grad_record.layout = layout;
    for (const auto& m : methods_) {
      if (!m) continue;
      AttentionRecord& r = m->needs_gradients() ? grad_record : plain_record;
      const ImageCapture& cap = m->needs_gradients() ? with_grad : plain;
      if (m->needs_gradients() && r.attention_grad.data.empty()) {
        r.attention = image_layers(cap.attention, 0);
        r.attention_grad = image_layers(cap.attention_grad, 0);
        r.scores_grad = image_layers(cap.scores_grad, 0);
      }
      if (!m->needs_gradients()) {
        if (m->uses_head_mean() && r.head_mean.data.empty()) r.head_mean = image_layers_head_mean(cap.attention, 0);
        if (!m->uses_head_mean() && r.attention.data.empty()) r.attention = image_layers(cap.attention, 0);
      }
    }
    // One row per method, baseline and blank-out: its map, and its cost (plus the model pass it needed).
    const auto add_row = [&](const std::string& name, const auto& make_map, double pass_ms) {
      const auto tm = std::chrono::steady_clock::now();
      scores.maps.push_back(make_map());
      MethodScores ms;
      ms.method = name;
      ms.milliseconds = elapsed_ms(tm) + pass_ms;
      scores.methods.push_back(std::move(ms));
    };
    for (std::size_t i = 0; i < methods_.size(); ++i) {
      const auto& m = methods_[i];
      if (!m) {  // runs the model itself, so its time is all its own
        add_row(
            model_methods_[i]->name(),
            [&] { return model_methods_[i]->explain_image(model_, im.tensor, scores.predicted); }, 0.0);
        continue;
      }
      const bool grads = m->needs_gradients();
      add_row(
          m->name(), [&] { return m->explain(grads ? grad_record : plain_record); }, grads ? backward_ms : forward_ms);
    }
    for (const auto& name : plan_.baselines)
      add_row(
          name,
          [&] {
            return name == "random" ? random_map(c.grid_h(), c.grid_w(), plan_.seed, im.index)
                                    : centre_prior_map(c.grid_h(), c.grid_w());
          },
          0.0);
    if (plan_.metrics.blankout)
      add_row(
          "blankout", [&] { return blank_out(model_, im.tensor, scores.predicted, space_, plan_.batch); }, 0.0);

    // Every perturbed copy of this image for every row, run through the model together.
    const bool curves = plan_.metrics.deletion || plan_.metrics.insertion;
    const bool perturb = plan_.metrics.positive || plan_.metrics.negative;
    PerturbationBatch queue(model_, im.tensor, space_, plan_.batch);
    std::vector<CurveJobs> curve_jobs;
    std::vector<std::vector<std::size_t>> perturb_jobs;
    for (const Array& map : scores.maps) {
      if (curves) curve_jobs.push_back(queue_deletion_insertion(queue, map.data));
      if (perturb) perturb_jobs.push_back(queue_perturbation(queue, map));
    }
    // SaCo's copies replace a pixel group by the image's per-channel mean, not by black: a queue of their own.
    PerturbationBatch saco_queue(model_, im.tensor, space_, plan_.batch, im.tensor.mean({1, 2}, true));
    std::vector<SacoJobs> saco_jobs;
    if (plan_.metrics.saco)
      for (const Array& map : scores.maps) saco_jobs.push_back(queue_saco(saco_queue, map));
    const torch::Tensor saco_p =
        saco_queue.size() > 0 ? saco_queue.run().select(1, scores.predicted).contiguous() : torch::Tensor();
    const torch::Tensor probs = queue.size() > 0 ? queue.run() : torch::Tensor();
    const torch::Tensor target_p = queue.size() > 0 ? probs.select(1, scores.predicted).contiguous() : torch::Tensor();
    const torch::Tensor top1 = queue.size() > 0 ? probs.argmax(1).contiguous() : torch::Tensor();

    const std::vector<double>& blank = scores.maps.back().data;
    const int k = top_k_count(static_cast<std::size_t>(patches), plan_.top_share);
    for (std::size_t r = 0; r < scores.maps.size(); ++r) {
      MethodScores& ms = scores.methods[r];
      const std::vector<double>& map = scores.maps[r].data;
      if (plan_.metrics.blankout) {
        ms.spearman_blankout = spearman(map, blank);
        ms.top_overlap_blankout = top_k_overlap(map, blank, k);
      }
      if (curves) {
        std::vector<double> x, del, ins;
        for (int j = 0; j <= patches; ++j) {
          x.push_back(static_cast<double>(j) / patches);
          del.push_back(target_p[static_cast<std::int64_t>(curve_jobs[r].deletion[j])].item<double>());
          ins.push_back(target_p[static_cast<std::int64_t>(curve_jobs[r].insertion[j])].item<double>());
        }
        if (plan_.metrics.deletion) {
          ms.deletion_auc = trapezoid_auc(x, del);
          ms.deletion_curve = resample_curve(del, curve_fractions());
        }
        if (plan_.metrics.insertion) {
          ms.insertion_auc = trapezoid_auc(x, ins);
          ms.insertion_curve = resample_curve(ins, curve_fractions());
        }
      }
      if (perturb) {
        const double clean = scores.predicted == truth ? 1.0 : 0.0;
        std::vector<double> pos{clean}, neg{clean};
        for (std::size_t j = 0; j < 9; ++j) {
          pos.push_back(top1[static_cast<std::int64_t>(perturb_jobs[r][j])].item<std::int64_t>() == truth ? 1.0 : 0.0);
          neg.push_back(top1[static_cast<std::int64_t>(perturb_jobs[r][9 + j])].item<std::int64_t>() == truth ? 1.0
                                                                                                              : 0.0);
        }
        if (plan_.metrics.positive) {
          ms.positive_auc = trapezoid_auc(perturbation_fractions(), pos);
          ms.positive_correct = pos;
        }
        if (plan_.metrics.negative) {
          ms.negative_auc = trapezoid_auc(perturbation_fractions(), neg);
          ms.negative_correct = neg;
        }
      }
      if (plan_.metrics.localization && im.box) {
        const Localization loc = localize(scores.maps[r], c.patch_size, c.patch_size, *im.box);
        ms.pointing_hit = loc.hit ? 1.0 : 0.0;
        ms.mass_in_box = loc.mass_inside;
      }
      if (plan_.metrics.saco) {
        std::vector<double> impact;
        for (std::size_t copy : saco_jobs[r].copies)
          impact.push_back(scores.probability - saco_p[static_cast<std::int64_t>(copy)].item<double>());
        ms.saco = saco(saco_jobs[r].salience, impact);
      }
      for (const Array& other : scores.maps) ms.spearman_vs.push_back(spearman(map, other.data));
    }
    out.push_back(std::move(scores));
  }
  return out;
}

}  // namespace attnlens
