// report.html of `attnlens evaluate` and `attnlens attack fgsm`: one self-contained page (viz/html.hpp) with the
// summary tables, curves and histograms as inline SVG, and a gallery of overlays.
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <utility>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"
#include "evaluation_table.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// One gallery row: the input picture (8-bit RGB) and named maps [gh,gw] drawn over it (min-max scaled, JET).
struct GalleryEntry {
  cv::Mat rgb;
  std::string caption;
  std::vector<std::pair<std::string, Array>> maps;
};

/// The evaluation page: settings, summary table (mean ± std), curves per method, Spearman matrix, cost, gallery.
std::string evaluation_report_html(const EvaluationSummary& summary, const std::string& settings,
                                   const std::vector<GalleryEntry>& gallery);

/// "0.412 ± 0.105" (3 decimals), or "–" when there were no values.
std::string mean_pm_std(const MeanStd& m);

/// The overlay of one map (min-max scaled, JET, vit-explain's blend) on an RGB picture, as the gallery draws it; BGR.
cv::Mat gallery_overlay(const cv::Mat& rgb, const Array& map);

}  // namespace attnlens
ATTNLENS_API_END
