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
#include <iomanip>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/array.hpp"
#include "core/stack_methods.hpp"
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
    throw InputError(option + ": cannot tell the output format of '" + path + "' (extension '" + extension_of(path) +
                     "'); use .npy (float64), .csv or .json");
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

// ---------------------------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------------------------

/// An attention stack read from disk and validated; `view` points into `array` (move-only so it stays valid).
struct LoadedStack {
  std::string path;
  Array array;
  AttentionView view;

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
    return *this;
  }
};

/// read_npy -> AttentionView::of -> check_attention_stack (spec section 0 conventions). Rows far from summing to 1:
/// InputError when `strict`, else one warning line on stderr naming the worst row. No patch grid is needed here:
/// the methods that lay tokens out on a grid resolve it themselves.
inline LoadedStack load_stack(const std::string& path, bool strict) {
  LoadedStack s;
  s.path = path;
  s.array = read_npy(path);
  s.view = AttentionView::of(s.array);
  const std::string warning = check_attention_stack(s.view, s.array.rank() == 4, strict, path);
  if (!warning.empty())
    std::cerr << "attnlens: warning: " << warning << " (use --strict to make this an error)" << std::endl;
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------------------------

inline void report_written(const std::string& path, const Array& a, bool quiet) {
  if (!quiet) std::cout << "wrote " << path << " " << a.shape_string() << std::endl;
}

/// Prints the per-layer summary table of a [L,H] mean-attention-distance array to stdout (attention distance, demo
/// and the model command distance).
inline void print_distance_table(const Array& distance, double patch_size) {
  if (distance.rank() != 2) return;
  const std::int64_t layers = distance.shape[0], heads = distance.shape[1];
  std::ostringstream s;
  s << "mean attention distance in pixels (patch size " << fmt_number(patch_size) << "), over " << heads << " heads\n";
  s << "layer      mean       min       max\n";
  s << std::fixed << std::setprecision(2);
  for (std::int64_t l = 0; l < layers; ++l) {
    const double* row = distance.data.data() + l * heads;
    double sum = 0.0, mn = row[0], mx = row[0];
    for (std::int64_t h = 0; h < heads; ++h) {
      sum += row[h];
      mn = std::min(mn, row[h]);
      mx = std::max(mx, row[h]);
    }
    s << std::setw(5) << l << std::setw(10) << (heads > 0 ? sum / static_cast<double>(heads) : 0.0) << std::setw(10)
      << mn << std::setw(10) << mx << "\n";
  }
  std::cout << s.str() << std::flush;
}

/// Carriage-return progress bar on stderr: "flow [=====>    ] 120/480 sources, 3.1 s, 38.7/s, ETA 9 s".
/// Enabled only when stderr is a terminal and not --quiet. Safe to call from several threads.
class ProgressBar {
 public:
  ProgressBar(std::string label, std::string unit, bool enabled)
      : label_(std::move(label)),
        unit_(std::move(unit)),
        enabled_(enabled && isatty(fileno(stderr)) != 0),
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
