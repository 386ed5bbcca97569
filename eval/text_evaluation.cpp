#include "eval/text_evaluation.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "eval/metrics.hpp"

namespace attnlens {

namespace {

// p(target) of each id list (all of one length: masking keeps it), in batches.
std::vector<double> target_probabilities(const TextModel& tm, const std::vector<std::vector<std::int64_t>>& ids,
                                         std::int64_t target, int batch) {
  std::vector<double> out;
  for (size_t begin = 0; begin < ids.size(); begin += static_cast<size_t>(batch)) {
    const size_t end = std::min(ids.size(), begin + static_cast<size_t>(batch));
    const std::vector<std::vector<std::int64_t>> rows(ids.begin() + static_cast<std::ptrdiff_t>(begin),
                                                      ids.begin() + static_cast<std::ptrdiff_t>(end));
    const auto p = torch::softmax(tm.model->forward(make_text_batch(rows, {}, tm.tokenizer.pad_id()))
                                      .to(torch::kCPU, torch::kFloat64),
                                  1)
                       .select(1, target)
                       .contiguous();
    for (std::int64_t i = 0; i < p.size(0); ++i) out.push_back(p[i].item<double>());
  }
  return out;
}


}  // namespace

std::vector<int> word_positions(const TextModel& tm, const std::vector<std::int64_t>& ids) {
  std::vector<int> out;
  for (size_t t = 0; t < ids.size(); ++t)
    if (ids[t] != tm.tokenizer.cls_id() && ids[t] != tm.tokenizer.sep_id()) out.push_back(static_cast<int>(t));
  return out;
}

TextEvaluator::TextEvaluator(const TextModel& model, TextEvaluationPlan plan) : model_(model), plan_(std::move(plan)) {
  std::set<std::string> seen;
  std::vector<std::string> scored;  // what the scorer runs: the methods and blankout
  for (const auto& m : plan_.methods) {
    if (m == "blankout") continue;  // the oracle row, added below
    rows_.push_back(m);
    scored.push_back(m);
  }
  for (const auto& b : plan_.baselines) {
    if (b != "random") throw InputError("unknown text baseline '" + b + "' (known: random)");
    rows_.push_back(b);
  }
  rows_.push_back("blankout");
  scored.push_back("blankout");
  for (const auto& r : rows_)
    if (!seen.insert(r).second) throw InputError("'" + r + "' is listed twice");
  if (!(plan_.top_share > 0.0 && plan_.top_share <= 1.0)) throw InputError("--top-share must be in (0, 1]");
  if (plan_.saco_groups < 2) throw InputError("SaCo needs at least 2 groups");
  if (plan_.attack_k < 1) throw InputError("--k must be >= 1");
  // The scorer checks every name and setting before a text is read.
  scorer_ = std::make_unique<const TextScorer>(model_, scored, plan_.settings, plan_.attattr,
                                               model_.tokenizer.mask_id());
}

TextEvaluator::~TextEvaluator() = default;

std::vector<ImageScores> TextEvaluator::evaluate(const LabelledTexts& texts, const ProgressFn& progress) const {
  std::vector<ImageScores> out;
  for (size_t i = 0; i < texts.encoded.size(); ++i) {
    out.push_back(evaluate(texts, i));
    if (progress) progress(static_cast<long long>(i + 1), static_cast<long long>(texts.encoded.size()));
  }
  return out;
}

ImageScores TextEvaluator::evaluate(const LabelledTexts& texts, std::size_t i) const {
  if (i >= texts.encoded.size()) throw InputError("text " + std::to_string(i) + " beyond the " +
                                                  std::to_string(texts.encoded.size()) + " texts");
  const TextScorer& scorer = *scorer_;
  const std::int64_t mask = model_.tokenizer.mask_id();
  {
    const EncodedText& e = texts.encoded[i];
    const std::vector<std::int64_t>& ids = e.encoding.ids;
    std::map<std::string, double> seconds;
    const TextScorer::Scores sc = scorer.score(e, -1, &seconds);
    ImageScores scores;
    scores.index = i;
    scores.id = e.text;
    scores.label = static_cast<int>(texts.examples[i].label);
    scores.predicted = sc.target;
    scores.probability = sc.probabilities[static_cast<size_t>(sc.target)];
    const std::vector<int> words = word_positions(model_, ids);
    const int n = static_cast<int>(words.size());
    // Each row's scores over the words, and its cost (the shared capture is charged to every attention method).
    std::vector<std::vector<double>> rows;
    std::mt19937_64 rng(plan_.seed * 1000003u + i);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (const auto& name : rows_) {
      MethodScores ms;
      ms.method = name;
      std::vector<double> r;
      if (name == "random") {
        for (int w = 0; w < n; ++w) r.push_back(uniform(rng));
        ms.milliseconds = 0.0;
      } else {
        const auto& all = sc.by_method.at(name);
        for (int w : words) r.push_back(all[static_cast<size_t>(w)]);
        ms.milliseconds = 1000.0 * (seconds[name] + (is_model_method(name) || name == "attattr" ||
                                                             name == "blankout" || name == "input-x-gradient"
                                                         ? 0.0
                                                         : seconds["forward_backward"]));
      }
      rows.push_back(std::move(r));
      scores.methods.push_back(std::move(ms));
    }
    // Every masked copy of this text for every row, run together.
    std::vector<std::vector<std::int64_t>> variants;
    struct Jobs {
      std::vector<size_t> deletion, insertion, saco, attack;
      std::vector<double> salience;
    };
    std::vector<Jobs> jobs(rows.size());
    std::vector<std::int64_t> all_masked = ids;
    for (int w : words) all_masked[static_cast<size_t>(w)] = mask;
    const int groups = std::min(plan_.saco_groups, n);
    for (size_t r = 0; r < rows.size(); ++r) {
      std::vector<int> order(static_cast<size_t>(n));
      for (int w = 0; w < n; ++w) order[static_cast<size_t>(w)] = w;
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return rows[r][a] > rows[r][b]; });
      std::vector<std::int64_t> del = ids, ins = all_masked;
      for (int k = 0; k <= n; ++k) {  // k words masked (deletion) or restored (insertion), most relevant first
        if (k > 0) {
          const size_t pos = static_cast<size_t>(words[static_cast<size_t>(order[static_cast<size_t>(k - 1)])]);
          del[pos] = mask;
          ins[pos] = ids[pos];
          if (k <= plan_.attack_k) {
            jobs[r].attack.push_back(variants.size());
            variants.push_back(del);
          }
        }
        jobs[r].deletion.push_back(variants.size());
        variants.push_back(del);
        jobs[r].insertion.push_back(variants.size());
        variants.push_back(ins);
      }
      // SaCo: groups of words by rank (ends at ceil(g n / K)), each masked alone (spec 19 on tokens).
      int begin = 0;
      for (int g = 1; g <= groups; ++g) {
        const int end = g == groups ? n : static_cast<int>(std::ceil(static_cast<double>(g) * n / groups));
        std::vector<std::int64_t> v = ids;
        double salience = 0.0;
        for (int k = begin; k < end; ++k) {
          v[static_cast<size_t>(words[static_cast<size_t>(order[static_cast<size_t>(k)])])] = mask;
          salience += rows[r][static_cast<size_t>(order[static_cast<size_t>(k)])];
        }
        jobs[r].salience.push_back(salience);
        jobs[r].saco.push_back(variants.size());
        variants.push_back(std::move(v));
        begin = end;
      }
    }
    const std::vector<double> p = target_probabilities(model_, variants, sc.target, plan_.batch);
    // The attack's question is the word attack command's: still the gold label? (argmax of all classes.)
    std::vector<std::vector<std::int64_t>> attacked;
    for (const Jobs& j : jobs)
      for (size_t v : j.attack) attacked.push_back(variants[v]);
    const std::vector<std::int64_t> attacked_class = predict_classes(model_, attacked, {}, plan_.batch);
    const std::vector<double>& blank = rows.back();
    const int top = std::max(1, static_cast<int>(std::floor(plan_.top_share * n)));
    size_t a = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
      MethodScores& ms = scores.methods[r];
      ms.spearman_blankout = spearman(rows[r], blank);
      ms.top_overlap_blankout = top_k_overlap(rows[r], blank, std::min(top, n));
      std::vector<double> x, del, ins;
      for (int k = 0; k <= n; ++k) {
        x.push_back(static_cast<double>(k) / n);
        del.push_back(p[jobs[r].deletion[static_cast<size_t>(k)]]);
        ins.push_back(p[jobs[r].insertion[static_cast<size_t>(k)]]);
      }
      ms.deletion_auc = trapezoid_auc(x, del);
      ms.insertion_auc = trapezoid_auc(x, ins);
      ms.deletion_curve = resample_curve(del, curve_fractions());
      ms.insertion_curve = resample_curve(ins, curve_fractions());
      std::vector<double> impact;
      for (size_t v : jobs[r].saco) impact.push_back(scores.probability - p[v]);
      ms.saco = saco(jobs[r].salience, impact);
      // Share of k = 0..K (trapezoid over k / K) at which the text keeps its gold label; k beyond the words repeats
      // the fully masked text.
      std::vector<double> kx{0.0}, correct{scores.predicted == scores.label ? 1.0 : 0.0};
      double last = correct[0];
      for (int k = 1; k <= plan_.attack_k; ++k) {
        if (k <= n) last = attacked_class[a++] == scores.label ? 1.0 : 0.0;
        kx.push_back(static_cast<double>(k) / plan_.attack_k);
        correct.push_back(last);
      }
      ms.word_attack_auc = trapezoid_auc(kx, correct);
    }
    for (size_t r = 0; r < rows.size(); ++r)
      for (size_t o = 0; o < rows.size(); ++o) scores.methods[r].spearman_vs.push_back(spearman(rows[r], rows[o]));
    return scores;
  }
}

}  // namespace attnlens
