#include "eval/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace attnlens {

namespace {

void check_pair(const std::vector<double>& a, const std::vector<double>& b, const char* what) {
  if (a.size() != b.size())
    throw InputError(std::string(what) + ": lengths differ (" + std::to_string(a.size()) + " and " +
                     std::to_string(b.size()) + ")");
  if (a.size() < 2) throw InputError(std::string(what) + ": needs at least 2 values");
}

std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<double> average_ranks(const std::vector<double>& values) {
  const std::size_t n = values.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return values[i] < values[j]; });
  std::vector<double> ranks(n);
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    while (j < n && values[order[j]] == values[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + 1 + j);  // mean of ranks i+1 .. j
    for (std::size_t k = i; k < j; ++k) ranks[order[k]] = rank;
    i = j;
  }
  return ranks;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  check_pair(a, b, "spearman");
  const std::vector<double> ra = average_ranks(a), rb = average_ranks(b);
  const double n = static_cast<double>(ra.size());
  const double mean = (n + 1.0) / 2.0;  // average ranks always sum to n(n+1)/2
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < ra.size(); ++i) {
    const double da = ra[i] - mean, db = rb[i] - mean;
    sab += da * db, saa += da * da, sbb += db * db;
  }
  if (saa <= 0.0 || sbb <= 0.0) return 0.0;
  return sab / std::sqrt(saa * sbb);
}

std::vector<int> descending_order(const std::vector<double>& values) {
  std::vector<int> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return values[i] > values[j]; });
  return order;
}

int top_k_count(std::size_t n, double share) {
  return std::max(1, static_cast<int>(std::floor(share * static_cast<double>(n) + 1e-9)));
}

double top_k_overlap(const std::vector<double>& a, const std::vector<double>& b, int k) {
  if (a.size() != b.size()) throw InputError("top-k overlap: lengths differ");
  if (k < 1 || static_cast<std::size_t>(k) > a.size())
    throw InputError("top-k overlap: k = " + std::to_string(k) + " is outside [1, " + std::to_string(a.size()) + "]");
  const std::vector<int> oa = descending_order(a), ob = descending_order(b);
  std::vector<char> in_a(a.size(), 0);
  for (int i = 0; i < k; ++i) in_a[oa[i]] = 1;
  int common = 0;
  for (int i = 0; i < k; ++i) common += in_a[ob[i]];
  return static_cast<double>(common) / k;
}

double trapezoid_auc(const std::vector<double>& x, const std::vector<double>& y) {
  check_pair(x, y, "trapezoid AUC");
  double area = 0.0;
  for (std::size_t i = 1; i < x.size(); ++i) area += 0.5 * (x[i] - x[i - 1]) * (y[i] + y[i - 1]);
  return area;
}

Localization localize(const Array& map, int patch_h, int patch_w, const std::array<int, 4>& box) {
  if (map.rank() != 2) throw InputError("localisation needs a [gh,gw] map, got " + map.shape_string());
  if (patch_h <= 0 || patch_w <= 0) throw InputError("localisation: patch size must be positive");
  const auto [x0, y0, x1, y1] = box;
  if (x1 <= x0 || y1 <= y0) throw InputError("localisation: empty box");
  const int gh = static_cast<int>(map.shape[0]), gw = static_cast<int>(map.shape[1]);
  Localization out;
  // Pointing game: the first maximum's patch centre (in pixel units, centre of pixel k at k + 0.5).
  const int top = static_cast<int>(std::max_element(map.data.begin(), map.data.end()) - map.data.begin());
  const double cy = (top / gw + 0.5) * patch_h, cx = (top % gw + 0.5) * patch_w;
  out.hit = cx >= x0 && cx < x1 && cy >= y0 && cy < y1;
  // Mass: each patch contributes its relevance times the share of its pixels inside the box.
  double inside = 0.0, total = 0.0, area_inside = 0.0;
  for (int r = 0; r < gh; ++r)
    for (int c = 0; c < gw; ++c) {
      const int px0 = c * patch_w, py0 = r * patch_h;
      const int ox = std::max(0, std::min(x1, px0 + patch_w) - std::max(x0, px0));
      const int oy = std::max(0, std::min(y1, py0 + patch_h) - std::max(y0, py0));
      const double share = static_cast<double>(ox) * oy / (static_cast<double>(patch_w) * patch_h);
      const double v = std::max(0.0, map.data[static_cast<std::size_t>(r) * gw + c]);
      inside += v * share, total += v, area_inside += share;
    }
  out.mass_inside = total > 0.0 ? inside / total : area_inside / (static_cast<double>(gh) * gw);
  return out;
}

Array random_map(int grid_h, int grid_w, std::uint64_t seed, std::uint64_t index) {
  Array out({grid_h, grid_w});
  const std::uint64_t base = splitmix64(seed ^ splitmix64(index));
  for (std::size_t i = 0; i < out.data.size(); ++i)
    out.data[i] = static_cast<double>(splitmix64(base + i) >> 11) * 0x1.0p-53;
  return out;
}

Array centre_prior_map(int grid_h, int grid_w) {
  Array out({grid_h, grid_w});
  const double sigma = 0.25 * std::min(grid_h, grid_w);  // in patch units: the map is scale-free
  for (int r = 0; r < grid_h; ++r)
    for (int c = 0; c < grid_w; ++c) {
      const double dy = r + 0.5 - 0.5 * grid_h, dx = c + 0.5 - 0.5 * grid_w;
      out.data[static_cast<std::size_t>(r) * grid_w + c] = std::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
    }
  return out;
}

MeanStd mean_std(const std::vector<double>& values) {
  MeanStd m;
  double sum = 0.0;
  for (double v : values)
    if (std::isfinite(v)) sum += v, ++m.count;
  if (m.count == 0) {
    m.mean = m.std = std::nan("");
    return m;
  }
  m.mean = sum / static_cast<double>(m.count);
  double ss = 0.0;
  for (double v : values)
    if (std::isfinite(v)) ss += (v - m.mean) * (v - m.mean);
  m.std = std::sqrt(ss / static_cast<double>(m.count));
  return m;
}

std::vector<double> resample_curve(const std::vector<double>& curve, const std::vector<double>& fractions) {
  if (curve.size() < 2) throw InputError("a curve needs at least two points");
  const double n = static_cast<double>(curve.size() - 1);
  std::vector<double> out;
  for (double t : fractions) {
    const double pos = t * n;
    const auto k = std::min(static_cast<std::size_t>(pos), curve.size() - 2);
    const double w = pos - static_cast<double>(k);
    out.push_back((1.0 - w) * curve[k] + w * curve[k + 1]);
  }
  return out;
}

double saco(const std::vector<double>& salience, const std::vector<double>& impact) {
  if (salience.size() != impact.size()) throw InputError("SaCo: one impact per group is needed");
  double f = 0.0, total = 0.0;
  for (std::size_t i = 0; i < salience.size(); ++i)
    for (std::size_t j = i + 1; j < salience.size(); ++j) {
      const double w = impact[i] >= impact[j] ? salience[i] - salience[j] : -(salience[i] - salience[j]);
      f += w;
      total += std::abs(w);
    }
  return total > 0 ? f / total : NAN;
}

}  // namespace attnlens
