#include "eval/text_applications.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/triggers.hpp"
#include "models/arrays.hpp"

namespace attnlens {

LabelledTexts encode_labelled(const TextModel& model, std::vector<TextExample> examples, const std::string& source) {
  const TextClassifierConfig& c = model.model->config();
  for (const auto& e : examples) {
    if (e.label < 0) throw InputError(source + ": text " + std::to_string(e.index) + " has no gold label");
    if (e.label >= c.num_labels)
      throw InputError(source + ": label " + std::to_string(e.label) + " of text " + std::to_string(e.index) +
                       " is out of range: the model has " + std::to_string(c.num_labels) + " classes");
  }
  LabelledTexts t;
  t.examples = std::move(examples);
  for (const auto& e : t.examples) {
    t.encoded.push_back(encode_text(model, e.text));
    t.truncated += t.encoded.back().encoding.truncated;
    t.ids.push_back(t.encoded.back().encoding.ids);
  }
  return t;
}

double accuracy_of(const std::vector<std::int64_t>& predicted, const std::vector<TextExample>& data) {
  size_t right = 0;
  for (size_t i = 0; i < data.size(); ++i) right += predicted[i] == data[i].label;
  return data.empty() ? 0.0 : static_cast<double>(right) / static_cast<double>(data.size());
}

HeadImportance text_head_importance(const TextModel& tm, const LabelledTexts& texts, std::size_t i,
                                    const AttAttrOptions& attattr_options) {
  // Spec 5: prune_head_with_attr targets the gold label; the raw-attention baseline takes each head's largest weight.
  const auto& e = texts.encoded.at(i);
  return {attattr_head_importance(attattr(*tm.model, e.batch, texts.examples.at(i).label, attattr_options)),
          attattr_head_importance(image_layers(tm.model->capture(e.batch).attention, 0))};
}

std::vector<std::pair<std::string, std::vector<int>>> pruning_orders(const Array& importance_attattr,
                                                                     const Array& importance_attention,
                                                                     std::uint64_t seed) {
  const int heads = static_cast<int>(importance_attattr.data.size());
  if (importance_attention.data.size() != importance_attattr.data.size())
    throw InputError("pruning_orders: the two importances differ in size");
  auto ascending = [&](const Array& score) {
    std::vector<int> order(static_cast<size_t>(heads));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return score.data[a] < score.data[b]; });
    return order;
  };
  std::vector<int> random_order(static_cast<size_t>(heads));
  std::iota(random_order.begin(), random_order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(random_order.begin(), random_order.end(), rng);
  return {{"attattr", ascending(importance_attattr)},
          {"attention", ascending(importance_attention)},
          {"random", random_order}};
}

std::vector<double> pruning_rates() {
  constexpr int kSteps = 10;
  std::vector<double> rates;
  for (int step = 0; step <= kSteps; ++step) rates.push_back(step / static_cast<double>(kSteps));
  return rates;
}

int heads_pruned(double rate, int heads) { return static_cast<int>(std::floor(rate * heads + 1e-9)); }

std::vector<std::vector<std::vector<std::int64_t>>> pruned_predictions(
    const TextModel& tm, const LabelledTexts& texts, std::size_t first, std::size_t count,
    const std::vector<std::pair<std::string, std::vector<int>>>& orders) {
  const TextClassifierConfig& c = tm.model->config();
  const int L = c.num_layers, H = c.num_heads;
  if (first + count > texts.ids.size()) throw InputError("pruned_predictions: texts out of range");
  const std::vector<std::vector<std::int64_t>> ids(texts.ids.begin() + static_cast<std::ptrdiff_t>(first),
                                                   texts.ids.begin() + static_cast<std::ptrdiff_t>(first + count));
  std::vector<std::vector<std::vector<std::int64_t>>> out;
  for (const auto& [name, order] : orders) {
    if (order.size() != static_cast<size_t>(L * H)) throw InputError("pruning order '" + name + "': one per head");
    out.emplace_back();
    for (double rate : pruning_rates()) {
      auto mask = torch::ones({L, H});
      for (int k = 0; k < heads_pruned(rate, L * H); ++k)
        mask[order[static_cast<size_t>(k)] / H][order[static_cast<size_t>(k)] % H] = 0.0;
      out.back().push_back(predict_classes(tm, ids, mask, static_cast<int>(std::max<std::size_t>(1, count))));
    }
  }
  return out;
}

HeadPruningResult prune_heads(const TextModel& tm, const LabelledTexts& texts, const HeadPruningSettings& s,
                              const ProgressFn& importance_progress, const ProgressFn& evaluation_progress) {
  const TextClassifierConfig& c = tm.model->config();
  const int L = c.num_layers, H = c.num_heads, heads = L * H;
  HeadPruningResult r;
  r.importance_examples = std::min(texts.encoded.size(), static_cast<size_t>(std::max(0, s.importance_examples)));
  r.importance_attattr = Array({L, H});
  r.importance_attention = Array({L, H});
  for (size_t i = 0; i < r.importance_examples; ++i) {
    const HeadImportance imp = text_head_importance(tm, texts, i, s.attattr);
    for (int k = 0; k < heads; ++k) {
      r.importance_attattr.data[k] += imp.attattr.data[k];
      r.importance_attention.data[k] += imp.attention.data[k];
    }
    if (importance_progress)
      importance_progress(static_cast<long long>(i + 1), static_cast<long long>(r.importance_examples));
  }
  const auto orders = pruning_orders(r.importance_attattr, r.importance_attention, s.seed);
  r.rates = pruning_rates();
  for (double rate : r.rates) r.heads_pruned.push_back(heads_pruned(rate, heads));
  std::vector<std::vector<double>> correct(orders.size(), std::vector<double>(r.rates.size(), 0.0));
  const std::size_t batch = static_cast<std::size_t>(std::max(1, s.batch));
  for (std::size_t first = 0; first < texts.ids.size(); first += batch) {
    const std::size_t count = std::min(batch, texts.ids.size() - first);
    const auto predicted = pruned_predictions(tm, texts, first, count, orders);
    for (size_t o = 0; o < orders.size(); ++o)
      for (size_t k = 0; k < r.rates.size(); ++k)
        for (size_t t = 0; t < count; ++t) correct[o][k] += predicted[o][k][t] == texts.examples[first + t].label;
    if (evaluation_progress)
      evaluation_progress(static_cast<long long>(first + count), static_cast<long long>(texts.ids.size()));
  }
  const double n = static_cast<double>(texts.ids.size());
  for (size_t o = 0; o < orders.size(); ++o) {
    std::vector<double> acc;
    for (double v : correct[o]) acc.push_back(texts.ids.empty() ? 0.0 : v / n);
    r.accuracy.emplace_back(orders[o].first, std::move(acc));
  }
  return r;
}

TextTree text_attribution_tree(const TextModel& tm, const EncodedText& e, std::int64_t target, double threshold,
                               const AttAttrOptions& attattr_options) {
  if (!std::isfinite(threshold)) throw InputError("--threshold must be a finite number");
  TextTree t;
  t.probabilities = class_probabilities(tm.model->forward(e.batch));
  t.predicted = std::max_element(t.probabilities.begin(), t.probabilities.end()) - t.probabilities.begin();
  t.target = target >= 0 ? target : t.predicted;
  t.attattr = attattr(*tm.model, e.batch, t.target, attattr_options);
  // S_l = sum over heads of layer l's attribution.
  const std::int64_t L = t.attattr.shape[0], H = t.attattr.shape[1], T = t.attattr.shape[2];
  Array per_layer({L, T, T});
  for (std::int64_t l = 0; l < L; ++l)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t k = 0; k < T * T; ++k) per_layer.data[l * T * T + k] += t.attattr.data[(l * H + h) * T * T + k];
  t.tree = attribution_tree(per_layer, threshold);
  return t;
}

TriggerResult find_triggers(const TextModel& tm, const LabelledTexts& train, const LabelledTexts& test,
                            const TriggerSettings& s, const ProgressFn& progress) {
  const TextClassifierConfig& c = tm.model->config();
  TriggerResult r;
  // (1) one pattern per training example, with the predicted class as AttAttr's target (run_adver_connection).
  std::vector<TriggerPattern> patterns;
  for (size_t i = 0; i < train.encoded.size(); ++i) {
    const auto& e = train.encoded[i];
    const auto pred = tm.model->forward(e.batch).argmax(1).item<std::int64_t>();
    patterns.push_back(mine_pattern(attattr(*tm.model, e.batch, pred, s.attattr)));
    if (progress) progress(static_cast<long long>(i + 1), static_cast<long long>(train.encoded.size()));
  }
  // (2) the strong patterns, strongest first.
  const auto kept = select_patterns(patterns, s.threshold, s.reference);
  r.mined = train.encoded.size();
  r.kept = kept.size();
  // (3) the strongest kept pattern of each gold label is that label's trigger; every trigger is inserted into the
  // held-out texts of every label (the matrix covers both readings of "non-targeted": a label's own pattern, and the
  // other label's).
  const int C = c.num_labels;
  std::vector<int> source_of(static_cast<size_t>(C), -1);
  for (size_t k : kept) {
    const int g = train.examples[k].label;
    if (source_of[static_cast<size_t>(g)] < 0) source_of[static_cast<size_t>(g)] = static_cast<int>(k);
  }
  auto sep_of = [&](const std::vector<std::int64_t>& ids) {
    return static_cast<int>(std::find(ids.begin(), ids.end(), tm.tokenizer.sep_id()) - ids.begin());
  };
  const auto before = predict_classes(tm, test.ids);
  for (int source = 0; source < C; ++source) {
    const int k = source_of[static_cast<size_t>(source)];
    if (k < 0) continue;
    const auto& src = train.encoded[static_cast<size_t>(k)].encoding;
    const auto triggers = trigger_tokens(patterns[static_cast<size_t>(k)], src.ids, sep_of(src.ids), s.all);
    LabelTrigger lt;
    lt.label = source;
    lt.source_text = train.examples[static_cast<size_t>(k)].text;
    lt.sum = patterns[static_cast<size_t>(k)].sum();
    for (const auto& t : triggers) lt.tokens.push_back(tm.tokenizer.vocabulary().token(t.token));
    std::vector<std::vector<std::int64_t>> attacked;
    for (const auto& ids : test.ids)
      attacked.push_back(insert_triggers(triggers, ids, sep_of(ids), tm.tokenizer.max_length()).ids);
    const auto after = predict_classes(tm, attacked);
    for (int gold = 0; gold < C; ++gold) {
      size_t n = 0, right_before = 0, right_after = 0;
      for (size_t i = 0; i < test.examples.size(); ++i) {
        if (test.examples[i].label != gold) continue;
        ++n;
        right_before += before[i] == gold;
        right_after += after[i] == gold;
      }
      TriggerAccuracy a;
      a.gold_label = gold;
      a.texts = n;
      a.before = n ? static_cast<double>(right_before) / n : 0.0;
      a.after = n ? static_cast<double>(right_after) / n : 0.0;
      lt.accuracy.push_back(a);
    }
    r.triggers.push_back(std::move(lt));
  }
  return r;
}

WordAttack::WordAttack(const TextModel& tm, const WordAttackSettings& s)
    : model_(tm), settings_(s), replacement_(s.replacement_id >= 0 ? s.replacement_id : tm.tokenizer.mask_id()) {
  if (s.max_k < 1) throw InputError("--k must be >= 1");
  const bool blank = std::find(s.methods.begin(), s.methods.end(), "blankout") != s.methods.end();
  scorer_ = std::make_unique<const TextScorer>(tm, s.methods, MethodSettings{}, s.attattr,
                                               blank ? tm.tokenizer.mask_id() : -1);
}

WordAttackText WordAttack::attack(const LabelledTexts& texts, std::size_t i) const {
  const TextModel& tm = model_;
  const WordAttackSettings& s = settings_;
  const auto& e = texts.encoded.at(i);
  const auto& ids = e.encoding.ids;
  WordAttackText out;
  // The scorer's one capture gives the clean prediction too: the scores explain the predicted class.
  const auto scores = scorer_->score(e, -1);
  out.clean = scores.target;
  // Candidate positions: the words, not [CLS]/[SEP].
  std::vector<int> positions;
  for (size_t t = 0; t < ids.size(); ++t)
    if (ids[t] != tm.tokenizer.cls_id() && ids[t] != tm.tokenizer.sep_id()) positions.push_back(static_cast<int>(t));
  for (const std::string& method : s.methods) {
    std::vector<int> ranked = positions;
    if (method == "random") {
      std::seed_seq seed{static_cast<std::uint32_t>(s.seed), static_cast<std::uint32_t>(s.seed >> 32),
                         static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(std::uint64_t(i) >> 32)};
      std::mt19937_64 rng(seed);
      std::shuffle(ranked.begin(), ranked.end(), rng);
    } else {
      const auto& sc = scores.by_method.at(method);
      std::stable_sort(ranked.begin(), ranked.end(), [&](int a, int b) { return sc[a] > sc[b]; });
    }
    std::vector<std::vector<std::int64_t>> variants;
    std::vector<std::int64_t> v = ids;
    for (int k = 1; k <= s.max_k; ++k) {
      if (static_cast<size_t>(k) <= ranked.size()) v[static_cast<size_t>(ranked[static_cast<size_t>(k - 1)])] = replacement_;
      variants.push_back(v);
    }
    out.attacked.push_back(predict_classes(tm, variants));
  }
  return out;
}

WordAttackResult word_attack_accuracy(const std::vector<WordAttackText>& attacked,
                                      const std::vector<TextExample>& examples, const WordAttackSettings& s) {
  if (attacked.size() != examples.size()) throw InputError("word attack: one result per text expected");
  std::vector<std::int64_t> clean;
  for (const WordAttackText& a : attacked) clean.push_back(a.clean);
  const double clean_accuracy = accuracy_of(clean, examples);
  const double n = static_cast<double>(examples.size());
  WordAttackResult r;
  for (size_t m = 0; m < s.methods.size(); ++m) {
    std::vector<double> acc{clean_accuracy};  // k = 0: the texts as they are
    for (int k = 1; k <= s.max_k; ++k) {
      double correct = 0;
      for (size_t i = 0; i < attacked.size(); ++i)
        correct += attacked[i].attacked.at(m).at(static_cast<size_t>(k - 1)) == examples[i].label;
      acc.push_back(correct / n);
    }
    r.accuracy.emplace_back(s.methods[m], std::move(acc));
  }
  return r;
}

WordAttackResult attack_words(const TextModel& tm, const LabelledTexts& texts, const WordAttackSettings& s,
                              const ProgressFn& progress) {
  const WordAttack attack(tm, s);
  std::vector<WordAttackText> attacked;
  for (size_t i = 0; i < texts.encoded.size(); ++i) {
    attacked.push_back(attack.attack(texts, i));
    if (progress) progress(static_cast<long long>(i + 1), static_cast<long long>(texts.encoded.size()));
  }
  return word_attack_accuracy(attacked, texts.examples, s);
}

}  // namespace attnlens
