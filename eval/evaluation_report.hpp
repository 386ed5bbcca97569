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

/// Saves one gallery entry as DIR/gallery/<index>.png (the picture) and DIR/gallery/<index>.json (caption and maps),
/// so that the report can be written later from the run folder alone (after a merge of shards, or a resume).
void save_gallery_entry(const std::string& dir, std::size_t index, const GalleryEntry& entry);
/// The entries saved in the gallery/ folders of `dirs` with index < `limit`, by index, each index once (the first
/// folder holding it wins). InputError for an unreadable entry.
std::vector<GalleryEntry> load_gallery(const std::vector<std::string>& dirs, std::size_t limit);

/// "0.412 ± 0.105" (3 decimals), or "–" when there were no values.
std::string mean_pm_std(const MeanStd& m);

/// The overlay of one map (min-max scaled, JET, vit-explain's blend) on an RGB picture, as the gallery draws it; BGR.
cv::Mat gallery_overlay(const cv::Mat& rgb, const Array& map);

}  // namespace attnlens
ATTNLENS_API_END
