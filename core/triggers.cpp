#include "core/triggers.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace attnlens {

namespace {

std::string pos_text(int p) { return std::to_string(p); }

// Checks a [CLS] A [SEP] (B [SEP]) layout and returns its length.
int check_layout(const std::vector<std::int64_t>& ids, int sep, const char* what) {
  const auto n = ids.size();
  if (n < 2 || n > static_cast<std::size_t>(1) << 30)
    throw InputError(std::string(what) + " must hold at least [CLS] and [SEP], got " + std::to_string(n) + " tokens");
  if (sep < 1 || static_cast<std::size_t>(sep) >= n)
    throw InputError(std::string(what) + ": [SEP] position " + pos_text(sep) + " outside [1, " +
                     std::to_string(n - 1) + "]");
  return static_cast<int>(n);
}

}  // namespace

double round_half_even(double x) {
  const double f = std::floor(x);
  const double d = x - f;  // exact for every double
  if (d > 0.5) return f + 1.0;
  if (d < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

TriggerPattern mine_pattern(const Array& attr) {
  if (attr.rank() != 4 || attr.shape[2] != attr.shape[3])
    throw InputError("trigger mining expects one example's attribution [L, H, N, N], got " + attr.shape_string());
  if (attr.shape[0] < 1 || attr.shape[1] < 1)
    throw InputError("trigger mining needs at least one layer and one head, got " + attr.shape_string());
  if (attr.shape[2] < 2)
    throw InputError("trigger mining needs at least 2 tokens (it takes the top 2 entries), got " +
                     attr.shape_string());
  for (double v : attr.data)
    if (!std::isfinite(v)) throw InputError("trigger mining: attribution holds a non-finite value");
  const int L = static_cast<int>(attr.shape[0]), H = static_cast<int>(attr.shape[1]);
  const int N = static_cast<int>(attr.shape[2]);
  const std::size_t NN = static_cast<std::size_t>(N) * N, layer_size = NN * H;

  TriggerPattern out;
  double best = 0.0;
  for (int l = 0; l < L; ++l) {
    const double* a = attr.data.data() + l * layer_size;
    // torch.argmax over the flattened [H, N, N]: the first occurrence of the maximum, so the lowest head on ties.
    const std::size_t k = static_cast<std::size_t>(std::max_element(a, a + layer_size) - a);
    // That head's maximum is the layer's maximum; strict > keeps the earliest layer on ties.
    if (l == 0 || a[k] > best) {
      best = a[k];
      out.layer = l;
      out.head = static_cast<int>(k / NN);
    }
  }

  // Top-2 of np.argsort(flat)[::-1]: among equal values the larger flat index comes first (the reversed order of a
  // stable ascending sort, which numpy's default sort is for up to 16 elements; larger sorts leave ties unspecified).
  const double* m = attr.data.data() + out.layer * layer_size + out.head * NN;
  std::size_t first = 0;
  for (std::size_t k = 1; k < NN; ++k)
    if (m[k] >= m[first]) first = k;
  std::size_t second = first == 0 ? 1 : 0;
  for (std::size_t k = second + 1; k < NN; ++k)
    if (k != first && m[k] >= m[second]) second = k;
  const std::size_t top[2] = {first, second};
  for (int t = 0; t < 2; ++t) {
    out.top[t] = {static_cast<int>(top[t] / N), static_cast<int>(top[t] % N)};
    out.value[t] = m[top[t]];
  }
  return out;
}

std::vector<std::size_t> select_patterns(const std::vector<TriggerPattern>& patterns, double threshold,
                                         bool reference) {
  if (!std::isfinite(threshold)) throw InputError("pattern threshold must be finite");
  for (std::size_t p = 0; p < patterns.size(); ++p)
    if (!std::isfinite(patterns[p].value[0]) || !std::isfinite(patterns[p].value[1]))
      throw InputError("pattern " + std::to_string(p) + " holds a non-finite value");
  std::vector<std::size_t> order(patterns.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // Python's sorted(..., reverse=True) is stable: equal sums keep the examples' order.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return patterns[a].sum() > patterns[b].sum(); });
  std::size_t keep = order.size();
  bool below = false;
  for (std::size_t c = 0; c < order.size(); ++c)
    if (patterns[order[c]].sum() < threshold) {
      keep = c;
      below = true;
      break;
    }
  // run_adver_evaluate.py slices pattern_list[0:cur_index] after `for cur_index in range(len)`: when no sum falls
  // below the threshold the loop ends on the last index, which the slice then leaves out.
  if (reference && !below && keep > 0) --keep;
  order.resize(keep);
  return order;
}

std::vector<Trigger> trigger_tokens(const TriggerPattern& pattern, const std::vector<std::int64_t>& source_ids,
                                    int source_sep, bool all) {
  const int n = check_layout(source_ids, source_sep, "trigger source");
  // value[1]/value[0] < 0.2 keeps the top-1 pair only. value[0] = 0 (where Python raises ZeroDivisionError) also
  // keeps the top-1 pair only: such a pattern's sum is <= 0 and selection drops it anyway.
  const bool with_second = all || !(pattern.value[0] == 0.0 || pattern.value[1] / pattern.value[0] < 0.2);
  std::vector<int> positions = {pattern.top[0].query, pattern.top[0].key};
  if (with_second) positions.insert(positions.end(), {pattern.top[1].query, pattern.top[1].key});
  for (int p : positions)
    if (p < 0 || p >= n)
      throw InputError("trigger pattern position " + pos_text(p) + " outside the source's " + std::to_string(n) +
                       " tokens");
  std::sort(positions.begin(), positions.end());
  positions.erase(std::unique(positions.begin(), positions.end()), positions.end());

  std::vector<Trigger> out;
  for (int p : positions) {
    // The reference drops tokens whose text is [CLS] or [SEP]; in a BERT input those are positions 0, sep, last.
    if (p == 0 || p == source_sep || p == n - 1) continue;
    Trigger t;
    t.token = source_ids[static_cast<std::size_t>(p)];
    t.source_position = p;
    if (p < source_sep) {
      t.segment = 0;
      t.relative = static_cast<double>(p) / static_cast<double>(source_sep - 1);  // pos counts [CLS]: (i_A + 1)/len_A
    } else {
      t.segment = 1;
      t.relative = static_cast<double>(p - source_sep) / static_cast<double>(n - 2 - source_sep);
    }
    out.push_back(t);
  }
  return out;
}

TokenSequence insert_triggers(const std::vector<Trigger>& triggers, const std::vector<std::int64_t>& target_ids,
                              int target_sep, int max_tokens) {
  const int n = check_layout(target_ids, target_sep, "trigger target");
  const bool pair = target_sep < n - 1;
  if (max_tokens < 0 || (max_tokens > 0 && max_tokens < (pair ? 3 : 2)))
    throw InputError("max_tokens " + std::to_string(max_tokens) + " leaves no room for [CLS] and [SEP]");
  for (const Trigger& t : triggers)
    if ((t.segment != 0 && t.segment != 1) || !std::isfinite(t.relative) || t.relative < 0.0 || t.relative > 1.0)
      throw InputError("trigger at source position " + pos_text(t.source_position) +
                       " has an invalid segment or relative position");

  const auto begin = target_ids.begin();
  std::vector<std::int64_t> seg[2] = {std::vector<std::int64_t>(begin + 1, begin + target_sep),
                                      pair ? std::vector<std::int64_t>(begin + target_sep + 1, begin + (n - 1))
                                           : std::vector<std::int64_t>()};
  for (int s = 0; s < 2; ++s) {
    if (s == 1 && !pair) break;  // the reference inserts B triggers only when the target has a text_b
    const auto count = std::count_if(triggers.begin(), triggers.end(), [s](const Trigger& t) { return t.segment == s; });
    const double grown = static_cast<double>(seg[s].size()) + static_cast<double>(count);
    long long prev = -1;
    // Triggers are taken in the given order (trigger_tokens' ascending source positions), each into the list as
    // the previous insertions left it, the target length fixed at len_seg + n_seg as in the reference.
    for (const Trigger& t : triggers) {
      if (t.segment != s) continue;
      auto cur = static_cast<long long>(round_half_even(grown * t.relative));
      if (cur == prev) ++cur;
      prev = cur;
      const auto at = std::min(static_cast<std::size_t>(cur), seg[s].size());  // list.insert appends past the end
      seg[s].insert(seg[s].begin() + static_cast<std::ptrdiff_t>(at), t.token);
    }
  }

  if (max_tokens > 0) {
    if (pair) {
      // _truncate_seq_pair: drop the last token of the longer sentence (B when equal).
      while (seg[0].size() + seg[1].size() > static_cast<std::size_t>(max_tokens - 3))
        (seg[0].size() > seg[1].size() ? seg[0] : seg[1]).pop_back();
    } else if (seg[0].size() > static_cast<std::size_t>(max_tokens - 2)) {
      seg[0].resize(static_cast<std::size_t>(max_tokens - 2));
    }
  }

  TokenSequence out;
  out.ids.push_back(target_ids.front());
  out.ids.insert(out.ids.end(), seg[0].begin(), seg[0].end());
  out.sep = static_cast<int>(out.ids.size());
  out.ids.push_back(target_ids[static_cast<std::size_t>(target_sep)]);
  // `if tokens_b:` in the reference: an empty B (and its [SEP]) is left out.
  if (pair && !seg[1].empty()) {
    out.ids.insert(out.ids.end(), seg[1].begin(), seg[1].end());
    out.ids.push_back(target_ids.back());
  }
  return out;
}

}  // namespace attnlens
