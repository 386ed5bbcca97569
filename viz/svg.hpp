// Small self-contained SVG plots (no fonts, scripts or links to fetch) for reports: scatter, line and bar marks on
// numeric axes, histograms and grouped bar charts. The same input always gives the same bytes, so outputs can be
// compared and checked in.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Escapes & < > " ' for XML/HTML text and attributes. Control characters XML 1.0 forbids are dropped and invalid
/// UTF-8 bytes become U+FFFD, so any input yields a well-formed document.
std::string xml_escape(const std::string& text);

struct PlotOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  int width = 640;  ///< pixels, whole picture
  int height = 400;
  /// Axis limits; unset ones come from the data (5% margin) or, for bars, include 0.
  std::optional<double> x_min, x_max, y_min, y_max;
  bool x_integer_ticks = false;  ///< ticks only at whole numbers (layers, heads)
  bool y_integer_ticks = false;
  /// When not empty, x ticks sit at 0, 1, ... labelled with these names (bar charts).
  std::vector<std::string> x_categories;
  bool legend = true;  ///< lists the named series at the right
};

/// Builder: add marks, then svg(). Non-finite points are skipped (lines break there). Colours are any SVG colour
/// ("#1f77b4", "red"); empty picks the next of matplotlib's tab10 palette.
class Plot {
 public:
  explicit Plot(PlotOptions options = {});

  /// Dots (e.g. mean attention distance: x = layer, y = pixels, one series per head or one for all).
  Plot& scatter(std::string name, std::vector<double> x, std::vector<double> y, std::string colour = {});
  /// A polyline through the points in the given order (deletion/insertion curves); markers adds dots.
  Plot& line(std::string name, std::vector<double> x, std::vector<double> y, std::string colour = {},
             bool markers = false);
  /// Bars from 0 to y, centred at x, `width` in x units.
  Plot& bars(std::string name, std::vector<double> x, std::vector<double> y, double width, std::string colour = {});

  /// The whole <svg> element. Throws InputError when x and y lengths differ or a size/limit is invalid.
  std::string svg() const;

 private:
  enum class Kind { scatter, line, bars };
  struct Series {
    Kind kind;
    std::string name;
    std::vector<double> x, y;
    std::string colour;
    bool markers = false;
    double bar_width = 0;
  };
  Plot& add(Series s);

  PlotOptions options_;
  std::vector<Series> series_;
};

/// Histogram of the finite values in `bins` equal bins over [min, max] (or options.x_min/x_max), the last bin closed
/// as numpy.histogram's. y = counts.
std::string svg_histogram(const std::vector<double>& values, int bins, PlotOptions options, std::string colour = {});

/// Grouped bars: one group per category, one bar per series (name, one value per category).
std::string svg_bar_chart(const std::vector<std::string>& categories,
                          const std::vector<std::pair<std::string, std::vector<double>>>& series,
                          PlotOptions options);

}  // namespace attnlens
ATTNLENS_API_END
