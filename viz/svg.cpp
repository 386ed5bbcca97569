#include "viz/svg.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/array.hpp"

namespace attnlens {

namespace {

// matplotlib's tab10, the colours readers of ML papers expect.
const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

constexpr double kCharWidth = 7.0;  // rough width of a 12px sans-serif character, for layout only

// std::to_chars: locale-independent, so a host program's setlocale() cannot turn "1.5" into "1,5".
std::string to_text(double v, std::chars_format format, int precision) {
  char buf[128];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, format, precision);
  return std::string(buf, r.ptr);
}

// Coordinates: two decimals, trailing zeros dropped; clamped so a far-away point cannot produce absurd numbers.
std::string coord(double v) {
  v = std::clamp(v, -1e6, 1e6);
  if (std::fabs(v) < 0.005) return "0";
  std::string s = to_text(v, std::chars_format::fixed, 2);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string tick_label(double v, double step) {
  if (std::fabs(v) < step * 1e-9) v = 0.0;  // no "-0"
  if (std::fabs(v) >= 1e6 || step < 1e-4) {
    std::string s = to_text(v, std::chars_format::general, 4);
    return s;
  }
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  return to_text(v, std::chars_format::fixed, decimals);
}

double nice_step(double range, int max_intervals, bool integer) {
  const double raw = range / std::max(1, max_intervals);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10.0 * mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw * (1 - 1e-12)) {
      step = m * mag;
      break;
    }
  if (integer) step = std::max(1.0, std::round(step));
  return step;
}

std::vector<double> ticks_in(double lo, double hi, double step) {
  std::vector<double> t;
  const double first = std::ceil(lo / step - 1e-9);
  for (int k = 0; k < 1000; ++k) {
    const double v = (first + k) * step;
    if (v > hi + step * 1e-9) break;
    t.push_back(v);
  }
  return t;
}

std::size_t utf8_length(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

struct Range {
  double lo = 0, hi = 1;
};

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default:
          if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // Validate one UTF-8 sequence (shortest form, no surrogates, <= U+10FFFF).
    int len = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    bool ok = len > 0 && i + len <= n;
    for (int k = 1; ok && k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (ok) {
      const std::uint32_t min_cp = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
      ok = cp >= min_cp && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) && cp != 0xFFFE && cp != 0xFFFF;
    }
    if (ok) {
      out.append(text, i, static_cast<std::size_t>(len));
      i += static_cast<std::size_t>(len);
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

Plot::Plot(PlotOptions options) : options_(std::move(options)) {}

Plot& Plot::add(Series s) {
  if (s.x.size() != s.y.size())
    throw InputError("plot series '" + s.name + "': " + std::to_string(s.x.size()) + " x values but " +
                     std::to_string(s.y.size()) + " y values");
  series_.push_back(std::move(s));
  return *this;
}

Plot& Plot::scatter(std::string name, std::vector<double> x, std::vector<double> y, std::string colour) {
  return add({Kind::scatter, std::move(name), std::move(x), std::move(y), std::move(colour), true, 0});
}

Plot& Plot::line(std::string name, std::vector<double> x, std::vector<double> y, std::string colour, bool markers) {
  return add({Kind::line, std::move(name), std::move(x), std::move(y), std::move(colour), markers, 0});
}

Plot& Plot::bars(std::string name, std::vector<double> x, std::vector<double> y, double width, std::string colour) {
  if (!(width > 0) || !std::isfinite(width)) throw InputError("plot bars '" + name + "': width must be > 0");
  return add({Kind::bars, std::move(name), std::move(x), std::move(y), std::move(colour), false, width});
}

std::string Plot::svg() const {
  const PlotOptions& o = options_;
  if (o.width < 120 || o.height < 100 || o.width > 20000 || o.height > 20000)
    throw InputError("plot size must be at least 120x100 and at most 20000x20000");

  // ---- data limits ----
  bool any_bars = false, any_x = false, any_y = false;
  double xlo = 0, xhi = 0, ylo = 0, yhi = 0;
  for (const Series& s : series_) {
    if (s.kind == Kind::bars) any_bars = true;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      const double half = s.kind == Kind::bars ? s.bar_width / 2 : 0.0;
      if (!any_x) xlo = s.x[i] - half, xhi = s.x[i] + half, any_x = true;
      xlo = std::min(xlo, s.x[i] - half);
      xhi = std::max(xhi, s.x[i] + half);
      if (!any_y) ylo = yhi = s.y[i], any_y = true;
      ylo = std::min(ylo, s.y[i]);
      yhi = std::max(yhi, s.y[i]);
    }
  }
  const auto resolve = [](bool any, double lo, double hi, bool sticky_zero, const std::optional<double>& fixed_lo,
                          const std::optional<double>& fixed_hi, const char* axis) {
    Range r;
    if (sticky_zero) lo = std::min(lo, 0.0), hi = std::max(hi, 0.0), any = true;
    if (any) {
      if (hi - lo <= 0) lo -= 0.5, hi += 0.5;
      const double pad = 0.05 * (hi - lo);
      r.lo = (sticky_zero && lo == 0.0) ? 0.0 : lo - pad;
      r.hi = (sticky_zero && hi == 0.0) ? 0.0 : hi + pad;
    }
    if (fixed_lo) r.lo = *fixed_lo;
    if (fixed_hi) r.hi = *fixed_hi;
    if (!std::isfinite(r.lo) || !std::isfinite(r.hi) || !(r.lo < r.hi))
      throw InputError(std::string("plot ") + axis + " limits must be finite with min < max");
    return r;
  };
  Range xr, yr;
  if (!o.x_categories.empty()) {
    // One slot per category, no margin: resolve() with the slot edges as fixed limits.
    const double n = static_cast<double>(o.x_categories.size());
    xr = resolve(false, 0, 0, false, o.x_min.value_or(-0.5), o.x_max.value_or(n - 0.5), "x");
  } else {
    xr = resolve(any_x, xlo, xhi, false, o.x_min, o.x_max, "x");
  }
  yr = resolve(any_y, ylo, yhi, any_bars, o.y_min, o.y_max, "y");

  // ---- layout ----
  std::vector<const Series*> legend_items;
  std::size_t legend_chars = 0;
  if (o.legend)
    for (const Series& s : series_)
      if (!s.name.empty()) {
        legend_items.push_back(&s);
        legend_chars = std::max(legend_chars, utf8_length(s.name));
      }
  const double legend_w =
      legend_items.empty() ? 0.0 : std::min(o.width / 3.0, 34.0 + kCharWidth * static_cast<double>(legend_chars));
  const double top = o.title.empty() ? 14.0 : 36.0;
  const double bottom = o.x_label.empty() ? 30.0 : 48.0;
  const double ph = o.height - top - bottom;

  const double ystep = nice_step(yr.hi - yr.lo, std::clamp(static_cast<int>(ph / 45), 2, 10), o.y_integer_ticks);
  const std::vector<double> yticks = ticks_in(yr.lo, yr.hi, ystep);
  std::size_t ytick_chars = 1;
  for (double t : yticks) ytick_chars = std::max(ytick_chars, tick_label(t, ystep).size());
  const double left = (o.y_label.empty() ? 10.0 : 28.0) + kCharWidth * static_cast<double>(ytick_chars) + 8.0;
  const double right = 14.0 + (legend_w > 0 ? legend_w + 8.0 : 0.0);
  const double pw = o.width - left - right;
  if (pw < 40 || ph < 40) throw InputError("plot is too small for its labels and legend");

  std::vector<double> xticks;
  double xstep = 1.0;
  if (o.x_categories.empty()) {
    xstep = nice_step(xr.hi - xr.lo, std::clamp(static_cast<int>(pw / 50), 2, 12), o.x_integer_ticks);
    xticks = ticks_in(xr.lo, xr.hi, xstep);
  } else {
    for (std::size_t i = 0; i < o.x_categories.size(); ++i)
      if (i >= xr.lo - 1e-9 && i <= xr.hi + 1e-9) xticks.push_back(static_cast<double>(i));
  }

  const auto px = [&](double x) { return (x - xr.lo) / (xr.hi - xr.lo) * pw; };
  const auto py = [&](double y) { return ph - (y - yr.lo) / (yr.hi - yr.lo) * ph; };
  const auto colour_of = [&](const Series& s) {
    if (!s.colour.empty()) return xml_escape(s.colour);
    const auto index = static_cast<std::size_t>(&s - series_.data());
    return std::string(kPalette[index % 10]);
  };

  // ---- output ----
  const std::string W = std::to_string(o.width), H = std::to_string(o.height);
  std::string svg;
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + W + "\" height=\"" + H + "\" viewBox=\"0 0 " + W +
         " " + H + "\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\">\n";
  if (!o.title.empty()) svg += "<title>" + xml_escape(o.title) + "</title>\n";
  svg += "<rect width=\"" + W + "\" height=\"" + H + "\" fill=\"#ffffff\"/>\n";
  if (!o.title.empty())
    svg += "<text x=\"" + coord(left + pw / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\" "
           "font-weight=\"bold\">" + xml_escape(o.title) + "</text>\n";

  // Grid lines under the marks.
  svg += "<g stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
  for (double t : yticks) {
    const std::string y = coord(top + py(t));
    svg += "<line x1=\"" + coord(left) + "\" y1=\"" + y + "\" x2=\"" + coord(left + pw) + "\" y2=\"" + y + "\"/>\n";
  }
  svg += "</g>\n";

  // Marks in a nested viewport, which clips them to the plot area without ids that could clash in one HTML page.
  svg += "<svg x=\"" + coord(left) + "\" y=\"" + coord(top) + "\" width=\"" + coord(pw) + "\" height=\"" + coord(ph) +
         "\" viewBox=\"0 0 " + coord(pw) + " " + coord(ph) + "\" overflow=\"hidden\">\n";
  for (const Series& s : series_) {
    const std::string colour = colour_of(s);
    if (s.kind == Kind::bars) {
      svg += "<g fill=\"" + colour + "\" stroke=\"#ffffff\" stroke-width=\"0.5\">\n";
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        const double x0 = px(s.x[i] - s.bar_width / 2), x1 = px(s.x[i] + s.bar_width / 2);
        const double base = py(std::clamp(0.0, yr.lo, yr.hi)), tip = py(s.y[i]);
        svg += "<rect x=\"" + coord(x0) + "\" y=\"" + coord(std::min(base, tip)) + "\" width=\"" + coord(x1 - x0) +
               "\" height=\"" + coord(std::fabs(base - tip)) + "\"/>\n";
      }
      svg += "</g>\n";
      continue;
    }
    if (s.kind == Kind::line) {
      std::string points;
      const auto flush = [&]() {
        if (!points.empty())
          svg += "<polyline points=\"" + points + "\" fill=\"none\" stroke=\"" + colour +
                 "\" stroke-width=\"1.75\" stroke-linejoin=\"round\"/>\n";
        points.clear();
      };
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
          flush();
          continue;
        }
        if (!points.empty()) points += ' ';
        points += coord(px(s.x[i])) + "," + coord(py(s.y[i]));
      }
      flush();
    }
    if (s.markers) {
      svg += "<g fill=\"" + colour + "\" fill-opacity=\"0.85\">\n";
      for (std::size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
          svg += "<circle cx=\"" + coord(px(s.x[i])) + "\" cy=\"" + coord(py(s.y[i])) + "\" r=\"3.5\"/>\n";
      svg += "</g>\n";
    }
  }
  svg += "</svg>\n";

  // Axes, ticks and tick labels.
  const std::string x_axis_y = coord(top + ph), l = coord(left);
  svg += "<g stroke=\"#333333\" stroke-width=\"1\">\n";
  svg += "<line x1=\"" + l + "\" y1=\"" + coord(top) + "\" x2=\"" + l + "\" y2=\"" + x_axis_y + "\"/>\n";
  svg += "<line x1=\"" + l + "\" y1=\"" + x_axis_y + "\" x2=\"" + coord(left + pw) + "\" y2=\"" + x_axis_y + "\"/>\n";
  for (double t : yticks) {
    const std::string y = coord(top + py(t));
    svg += "<line x1=\"" + coord(left - 4) + "\" y1=\"" + y + "\" x2=\"" + l + "\" y2=\"" + y + "\"/>\n";
  }
  for (double t : xticks) {
    const std::string x = coord(left + px(t));
    svg += "<line x1=\"" + x + "\" y1=\"" + x_axis_y + "\" x2=\"" + x + "\" y2=\"" + coord(top + ph + 4) + "\"/>\n";
  }
  svg += "</g>\n<g fill=\"#333333\">\n";
  for (double t : yticks)
    svg += "<text x=\"" + coord(left - 7) + "\" y=\"" + coord(top + py(t) + 4) + "\" text-anchor=\"end\">" +
           tick_label(t, ystep) + "</text>\n";
  // Category names too long for their slot are turned 45 degrees.
  std::size_t cat_chars = 0;
  for (const auto& c : o.x_categories) cat_chars = std::max(cat_chars, utf8_length(c));
  const bool rotate =
      !o.x_categories.empty() &&
      kCharWidth * static_cast<double>(cat_chars) > 0.95 * pw / static_cast<double>(o.x_categories.size());
  for (double t : xticks) {
    const std::string x = coord(left + px(t)), y = coord(top + ph + 17);
    const std::string label =
        o.x_categories.empty() ? tick_label(t, xstep) : xml_escape(o.x_categories[static_cast<std::size_t>(t)]);
    if (rotate)
      svg += "<text x=\"" + x + "\" y=\"" + y + "\" text-anchor=\"end\" transform=\"rotate(-45 " + x + " " + y +
             ")\">" + label + "</text>\n";
    else
      svg += "<text x=\"" + x + "\" y=\"" + y + "\" text-anchor=\"middle\">" + label + "</text>\n";
  }
  if (!o.x_label.empty())
    svg += "<text x=\"" + coord(left + pw / 2) + "\" y=\"" + coord(o.height - 8.0) + "\" text-anchor=\"middle\">" +
           xml_escape(o.x_label) + "</text>\n";
  if (!o.y_label.empty()) {
    const std::string x = "16", y = coord(top + ph / 2);
    svg += "<text x=\"" + x + "\" y=\"" + y + "\" text-anchor=\"middle\" transform=\"rotate(-90 " + x + " " + y +
           ")\">" + xml_escape(o.y_label) + "</text>\n";
  }
  svg += "</g>\n";

  if (!legend_items.empty()) {
    const double lx = left + pw + 16;
    svg += "<g>\n";
    for (std::size_t i = 0; i < legend_items.size(); ++i) {
      const Series& s = *legend_items[i];
      const double cy = top + 8 + 18.0 * static_cast<double>(i);
      const std::string colour = colour_of(s);
      if (s.kind == Kind::bars)
        svg += "<rect x=\"" + coord(lx) + "\" y=\"" + coord(cy - 5) + "\" width=\"14\" height=\"10\" fill=\"" +
               colour + "\"/>\n";
      if (s.kind == Kind::line)
        svg += "<line x1=\"" + coord(lx - 2) + "\" y1=\"" + coord(cy) + "\" x2=\"" + coord(lx + 16) + "\" y2=\"" +
               coord(cy) + "\" stroke=\"" + colour + "\" stroke-width=\"1.75\"/>\n";
      if (s.markers)
        svg += "<circle cx=\"" + coord(lx + 7) + "\" cy=\"" + coord(cy) + "\" r=\"3.5\" fill=\"" + colour + "\"/>\n";
      svg += "<text x=\"" + coord(lx + 22) + "\" y=\"" + coord(cy + 4) + "\" fill=\"#333333\">" + xml_escape(s.name) +
             "</text>\n";
    }
    svg += "</g>\n";
  }
  svg += "</svg>\n";
  return svg;
}

std::string svg_histogram(const std::vector<double>& values, int bins, PlotOptions options, std::string colour) {
  if (bins < 1 || bins > 10000) throw InputError("histogram bins must be in [1, 10000]");
  double lo = 0, hi = 1;
  bool any = false;
  for (double v : values)
    if (std::isfinite(v)) {
      if (!any) lo = hi = v, any = true;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (options.x_min) lo = *options.x_min;
  if (options.x_max) hi = *options.x_max;
  if (!std::isfinite(lo) || !std::isfinite(hi) || hi < lo) throw InputError("histogram range must have min <= max");
  if (hi == lo) lo -= 0.5, hi += 0.5;  // numpy.histogram's choice for a single value
  const double width = (hi - lo) / bins;
  std::vector<double> centres(static_cast<std::size_t>(bins)), counts(static_cast<std::size_t>(bins), 0.0);
  for (int b = 0; b < bins; ++b) centres[static_cast<std::size_t>(b)] = lo + (b + 0.5) * width;
  for (double v : values) {
    if (!std::isfinite(v) || v < lo || v > hi) continue;
    const int b = v == hi ? bins - 1 : std::min(bins - 1, static_cast<int>((v - lo) / (hi - lo) * bins));
    counts[static_cast<std::size_t>(b)] += 1;
  }
  if (!options.x_min) options.x_min = lo;
  if (!options.x_max) options.x_max = hi;
  options.y_integer_ticks = true;
  if (options.y_label.empty()) options.y_label = "count";
  Plot plot(std::move(options));
  plot.bars("", std::move(centres), std::move(counts), width, std::move(colour));
  return plot.svg();
}

std::string svg_bar_chart(const std::vector<std::string>& categories,
                          const std::vector<std::pair<std::string, std::vector<double>>>& series,
                          PlotOptions options) {
  if (categories.empty()) throw InputError("bar chart needs at least one category");
  for (const auto& s : series)
    if (s.second.size() != categories.size())
      throw InputError("bar chart series '" + s.first + "' has " + std::to_string(s.second.size()) +
                       " values for " + std::to_string(categories.size()) + " categories");
  options.x_categories = categories;
  Plot plot(std::move(options));
  const double group = 0.8, width = group / static_cast<double>(std::max<std::size_t>(1, series.size()));
  for (std::size_t s = 0; s < series.size(); ++s) {
    std::vector<double> x(categories.size());
    for (std::size_t i = 0; i < categories.size(); ++i)
      x[i] = static_cast<double>(i) - group / 2 + (static_cast<double>(s) + 0.5) * width;
    plot.bars(series[s].first, std::move(x), series[s].second, width);
  }
  return plot.svg();
}

}  // namespace attnlens
