// Small helpers shared by the attnlens subcommands (header-only): loading + validating an attention stack, option
// checks, row selection / prefix dropping / scaling of results, reporting, and a terminal progress bar.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/array.hpp"
#include "core/validate.hpp"
#include "io/array_writer.hpp"
#include "io/npy.hpp"

namespace attnlens::cli {

/// Formats a double compactly for messages ("0.05", "1e-03").
inline std::string fmt_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// ---------------------------------------------------------------------------------------------------------------
// Output paths
// ---------------------------------------------------------------------------------------------------------------

/// Extension of `path` including the dot (".npy"), or "" when the file name has none.
inline std::string extension_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  if (dot == (slash == std::string::npos ? 0 : slash + 1)) return "";  // ".hidden" has no extension
  return path.substr(dot);
}

/// Throws InputError unless `path` ends in .npy, .csv or .json (checked before any computation).
inline void check_output_path(const std::string& path, const std::string& option) {
  if (path.empty()) throw InputError(option + ": empty output path");
  std::string ext = extension_of(path);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext != ".npy" && ext != ".csv" && ext != ".json") {
    throw InputError(option + ": cannot tell the output format of '" + path + "' (extension '" +
                     extension_of(path) + "'); use .npy (float64), .csv or .json");
  }
}

/// "out/maps.npy" -> "out/maps_masks.npy".
inline std::string with_suffix(const std::string& path, const std::string& suffix) {
  const std::string ext = extension_of(path);
  return path.substr(0, path.size() - ext.size()) + suffix + ext;
}

// ---------------------------------------------------------------------------------------------------------------
// Option parsing / range checks
// ---------------------------------------------------------------------------------------------------------------

/// Parses "14x14" (or "14X14") into {14, 14}; "" gives {0, 0} (infer a square grid).
inline std::pair<int, int> parse_grid(const std::string& text) {
  if (text.empty()) return {0, 0};
  const auto x = text.find_first_of("xX");
  auto all_digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 6 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (x != std::string::npos) {
    const std::string h = text.substr(0, x), w = text.substr(x + 1);
    if (all_digits(h) && all_digits(w)) {
      const int gh = std::stoi(h), gw = std::stoi(w);
      if (gh > 0 && gw > 0) return {gh, gw};
    }
  }
  throw InputError("--grid: expected HxW with positive integers, such as 14x14, got '" + text + "'");
}

/// Python-style layer index: -1 = last. Throws InputError when outside [-layers, layers).
inline int resolve_layer(int layer, int layers, const std::string& option) {
  const int resolved = layer < 0 ? layer + layers : layer;
  if (resolved < 0 || resolved >= layers) {
    throw InputError(option + " " + std::to_string(layer) + " is out of range for " + std::to_string(layers) +
                     " layers (valid: " + std::to_string(-layers) + ".." + std::to_string(layers - 1) + ")");
  }
  return resolved;
}

inline void check_query_row(int row, int tokens) {
  if (row < 0 || row >= tokens) {
    throw InputError("--query-row " + std::to_string(row) + " is out of range: the input has " +
                     std::to_string(tokens) + " tokens (valid: 0.." + std::to_string(tokens - 1) + ")");
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------------------------

/// An attention stack read from disk and validated; `view` points into `array` (move-only so it stays valid).
struct LoadedStack {
  std::string path;
  Array array;
  AttentionView view;
  TokenLayout layout;
  AttentionCheck check;

  LoadedStack() = default;
  LoadedStack(const LoadedStack&) = delete;
  LoadedStack& operator=(const LoadedStack&) = delete;
  LoadedStack(LoadedStack&& other) noexcept { *this = std::move(other); }
  LoadedStack& operator=(LoadedStack&& other) noexcept {
    path = std::move(other.path);
    array = std::move(other.array);
    view = AttentionView{};
    if (other.view.data != nullptr) {
      view = other.view;
      view.data = array.data.data();
    }
    layout = other.layout;
    check = other.check;
    return *this;
  }
};

/// read_npy -> AttentionView::of -> TokenLayout::resolve -> check_attention (spec section 0 conventions).
/// Rows far from summing to 1: InputError when `strict`, else one warning line on stderr naming the worst row.
inline LoadedStack load_stack(const std::string& path, int prefix_tokens, const std::string& grid, bool strict) {
  if (prefix_tokens < 0) {
    throw InputError("--prefix-tokens " + std::to_string(prefix_tokens) + " must be >= 0");
  }
  const auto [grid_h, grid_w] = parse_grid(grid);
  LoadedStack s;
  s.path = path;
  s.array = read_npy(path);
  s.view = AttentionView::of(s.array);
  s.layout = TokenLayout::resolve(s.view.tokens, prefix_tokens, grid_h, grid_w);
  s.check = check_attention(s.view);
  if (s.check.max_row_sum_error > kRowSumTolerance) {
    std::string where = "layer " + std::to_string(s.check.worst_layer);
    if (s.array.rank() == 4) where += ", head " + std::to_string(s.check.worst_head);
    where += ", row " + std::to_string(s.check.worst_row);
    const std::string what = "rows of '" + path + "' do not sum to 1: max |row sum - 1| = " +
                             fmt_number(s.check.max_row_sum_error) + " at " + where + " (tolerance " +
                             fmt_number(kRowSumTolerance) + "); expected post-softmax attention";
    if (strict) throw InputError(what);
    std::cerr << "attnlens: warning: " << what << " (use --strict to make this an error)" << std::endl;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Result shaping
// ---------------------------------------------------------------------------------------------------------------

/// Matrix `index` of a stack [K,N,N] -> [N,N].
inline Array take_matrix(const Array& stack, std::int64_t index) {
  const std::int64_t n = stack.shape[1], m = stack.shape[2];
  Array out({n, m});
  std::copy_n(stack.data.begin() + index * n * m, n * m, out.data.begin());
  return out;
}

/// Row `row` of every trailing [N,N] matrix: [...,N,N] -> [...,N] (dims: the query dimension is removed).
inline Array select_row(const Array& a, int row) {
  const int r = a.rank();
  const std::int64_t rows = a.shape[r - 2], cols = a.shape[r - 1];
  std::vector<std::int64_t> shape(a.shape.begin(), a.shape.end() - 2);
  shape.push_back(cols);
  Array out(shape);
  const std::int64_t mats = a.size() / (rows * cols);
  for (std::int64_t i = 0; i < mats; ++i) {
    std::copy_n(a.data.begin() + (i * rows + row) * cols, cols, out.data.begin() + i * cols);
  }
  return out;
}

/// Drops the first `prefix` entries of the last dimension (--patches-only).
inline Array drop_prefix_columns(const Array& a, int prefix) {
  if (prefix <= 0) return a;
  const std::int64_t cols = a.shape.back();
  const std::int64_t kept = std::max<std::int64_t>(0, cols - prefix);
  std::vector<std::int64_t> shape = a.shape;
  shape.back() = kept;
  Array out(shape);
  const std::int64_t rows = cols == 0 ? 0 : a.size() / cols;
  for (std::int64_t i = 0; i < rows; ++i) {
    std::copy_n(a.data.begin() + i * cols + (cols - kept), kept, out.data.begin() + i * kept);
  }
  return out;
}

enum class Scale { None, Max, MinMax, Sum };

inline Scale parse_scale(const std::string& s) {
  if (s == "max") return Scale::Max;
  if (s == "minmax") return Scale::MinMax;
  if (s == "sum") return Scale::Sum;
  return Scale::None;
}

/// Rescales each row (last dimension): max -> x/max, minmax -> (x-min)/(max-min), sum -> x/sum.
/// A zero denominator leaves the row unchanged.
inline void scale_rows(Array& a, Scale scale) {
  if (scale == Scale::None || a.data.empty()) return;
  const std::int64_t cols = a.rank() == 0 ? 1 : a.shape.back();
  if (cols == 0) return;
  const std::int64_t rows = a.size() / cols;
  for (std::int64_t i = 0; i < rows; ++i) {
    double* x = a.data.data() + i * cols;
    const double mx = *std::max_element(x, x + cols);
    const double mn = *std::min_element(x, x + cols);
    double offset = 0.0, denom = 1.0;
    if (scale == Scale::Max) {
      denom = mx;
    } else if (scale == Scale::MinMax) {
      offset = mn;
      denom = mx - mn;
    } else {
      denom = 0.0;
      for (std::int64_t j = 0; j < cols; ++j) denom += x[j];
    }
    if (denom == 0.0 || !std::isfinite(denom)) continue;
    for (std::int64_t j = 0; j < cols; ++j) x[j] = (x[j] - offset) / denom;
  }
}

/// Divides each row (last dimension) by its sum; rows summing to 0 stay unchanged.
inline void normalize_last_dim(Array& a) { scale_rows(a, Scale::Sum); }

// ---------------------------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------------------------

inline void report_written(const std::string& path, const Array& a, bool quiet) {
  if (!quiet) std::cout << "wrote " << path << " " << a.shape_string() << std::endl;
}

/// Carriage-return progress bar on stderr: "flow [=====>    ] 120/480 sources, 3.1 s, 38.7/s, ETA 9 s".
/// Enabled only when stderr is a terminal and not --quiet. Safe to call from several threads.
class ProgressBar {
 public:
  ProgressBar(std::string label, std::string unit, bool enabled)
      : label_(std::move(label)), unit_(std::move(unit)), enabled_(enabled && isatty(fileno(stderr)) != 0),
        start_(std::chrono::steady_clock::now()) {}
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar() { finish(); }

  bool enabled() const { return enabled_; }

  void update(long long done, long long total) {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (done < total && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    drawn_ = true;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    constexpr int kWidth = 30;
    const double frac = total > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 1.0;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(kWidth, ' ');
    for (int i = 0; i < filled; ++i) bar[i] = '=';
    if (filled < kWidth) bar[filled] = '>';
    char tail[128];
    if (done > 0 && done < total) {
      const double eta = elapsed * static_cast<double>(total - done) / static_cast<double>(done);
      const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
      std::snprintf(tail, sizeof tail, "%.1f s, %.3g/s, ETA %.0f s", elapsed, rate, eta);
    } else {
      std::snprintf(tail, sizeof tail, "%.1f s", elapsed);
    }
    std::fprintf(stderr, "\r%s [%s] %lld/%lld %s, %s   ", label_.c_str(), bar.c_str(), done, total, unit_.c_str(),
                 tail);
    std::fflush(stderr);
  }

  /// Ends the bar's line (once), if anything was drawn.
  void finish() {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (drawn_ && !finished_) {
      std::fputc('\n', stderr);
      std::fflush(stderr);
    }
    finished_ = true;
  }

 private:
  std::string label_, unit_;
  bool enabled_;
  bool drawn_ = false, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_{};
  std::mutex mutex_;
};

/// Seconds elapsed since `start`.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace attnlens::cli
