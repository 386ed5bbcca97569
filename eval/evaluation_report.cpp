#include "eval/evaluation_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "io/atomic_file.hpp"

#include "viz/html.hpp"
#include "viz/overlay.hpp"
#include "viz/svg.hpp"

namespace attnlens {

std::string mean_pm_std(const MeanStd& m) {
  if (m.count == 0) return "\u2013";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f \u00b1 %.3f", m.mean, m.std);
  return buf;
}

cv::Mat gallery_overlay(const cv::Mat& rgb, const Array& map) {
  return overlay_vit_explain(rgb, scale_for_display(map, true));
}

void save_gallery_entry(const std::string& dir, std::size_t index, const GalleryEntry& entry) {
  const std::filesystem::path folder = std::filesystem::path(dir) / "gallery";
  std::filesystem::create_directories(folder);
  nlohmann::json js{{"index", index}, {"caption", entry.caption}, {"maps", nlohmann::json::array()}};
  for (const auto& [name, map] : entry.maps) js["maps"].push_back({{"name", name}, {"shape", map.shape}, {"data", map.data}});
  cv::Mat bgr;
  cv::cvtColor(entry.rgb, bgr, cv::COLOR_RGB2BGR);
  const std::string stem = (folder / std::to_string(index)).string();
  write_file_atomic(stem + ".png", encode_png(bgr));
  write_file_atomic(stem + ".json", js.dump());  // last: an entry counts once its maps are there
}

std::vector<GalleryEntry> load_gallery(const std::vector<std::string>& dirs, std::size_t limit) {
  std::map<std::size_t, GalleryEntry> found;
  for (const std::string& dir : dirs) {
    const std::filesystem::path folder = std::filesystem::path(dir) / "gallery";
    std::error_code ec;
    if (!std::filesystem::is_directory(folder, ec)) continue;
    for (const auto& file : std::filesystem::directory_iterator(folder)) {
      if (file.path().extension() != ".json") continue;
      const std::string stem = file.path().stem().string();
      if (stem.empty() || stem.find_first_not_of("0123456789") != std::string::npos || stem.size() > 18) continue;
      const std::size_t index = std::stoull(stem);
      if (index >= limit || found.count(index)) continue;
      GalleryEntry e;
      try {
        std::ifstream in(file.path());
        const nlohmann::json js = nlohmann::json::parse(in);
        e.caption = js.at("caption").get<std::string>();
        for (const auto& m : js.at("maps")) {
          Array a;
          a.shape = m.at("shape").get<std::vector<std::int64_t>>();
          a.data = m.at("data").get<std::vector<double>>();
          if (a.shape.size() != 2 || a.shape[0] * a.shape[1] != static_cast<std::int64_t>(a.data.size()))
            throw InputError("a map's shape does not match its values");
          e.maps.emplace_back(m.at("name").get<std::string>(), std::move(a));
        }
      } catch (const std::exception& ex) {
        throw InputError(file.path().string() + ": unreadable gallery entry (" + ex.what() + ")");
      }
      const cv::Mat bgr = cv::imread((folder / (stem + ".png")).string(), cv::IMREAD_COLOR);
      if (bgr.empty()) throw InputError((folder / (stem + ".png")).string() + ": missing or unreadable picture");
      cv::cvtColor(bgr, e.rgb, cv::COLOR_BGR2RGB);
      found.emplace(index, std::move(e));
    }
  }
  std::vector<GalleryEntry> out;
  for (auto& [index, e] : found) out.push_back(std::move(e));
  return out;
}

namespace {

// Scalars shown in the summary table, with their headings; a column appears only when some row has values.
const std::vector<std::pair<std::string, std::string>>& table_columns() {
  static const std::vector<std::pair<std::string, std::string>> c{
      {"spearman_blankout", "Spearman vs blank-out"},
      {"top_overlap_blankout", "top-10% overlap"},
      {"deletion_auc", "deletion AUC (lower is better)"},
      {"insertion_auc", "insertion AUC (higher is better)"},
      {"positive_auc", "positive perturbation AUC (lower is better)"},
      {"negative_auc", "negative perturbation AUC (higher is better)"},
      {"pointing_hit", "pointing game"},
      {"mass_in_box", "mass in box"},
      {"saco", "SaCo (higher is better)"},
      {"word_attack_auc", "word attack AUC (lower is better)"},
      {"milliseconds", "ms per image or text"}};
  return c;
}

void curve_plot(HtmlReport& page, const EvaluationSummary& s, const std::string& title, const std::string& x_label,
                const std::string& y_label, const std::vector<double>& x, std::vector<double> RowSummary::*member) {
  PlotOptions o;
  o.title = title;
  o.x_label = x_label;
  o.y_label = y_label;
  o.width = 560;
  o.height = 360;
  o.y_min = 0.0;
  Plot plot(o);
  bool any = false;
  for (const RowSummary& row : s.rows) {
    const std::vector<double>& y = row.*member;
    if (y.size() != x.size()) continue;
    plot.line(row.method, x, y, {}, true);
    any = true;
  }
  if (any) page.svg(plot.svg(), title);
}

}  // namespace

std::string evaluation_report_html(const EvaluationSummary& s, const std::string& settings,
                                   const std::vector<GalleryEntry>& gallery) {
  HtmlReport page("attnlens evaluate");
  page.section("Faithfulness of the explanations");
  char line[160];
  const bool text = s.unit == "text";
  std::snprintf(line, sizeof line, "%zu %s", s.images, text ? "texts" : "images");
  std::string intro = line;
  if (std::isfinite(s.accuracy)) {
    std::snprintf(line, sizeof line, "; top-1 accuracy of the model on them %.1f%%", 100.0 * s.accuracy);
    intro += line;
  }
  if (text)
    page.paragraph(intro +
                   ". Mean \u00b1 standard deviation over texts, on the words (special tokens are never scored or "
                   "masked). Blank-out: each token replaced by the mask token, drop of the predicted class's "
                   "probability (spec 8.1). Deletion/insertion: probability of the predicted class as words are "
                   "masked, or restored onto a fully masked text, most relevant first. SaCo: words in up to 10 "
                   "groups by rank, each group masked alone (spec 19). Word attack: the share of k = 0..K top words "
                   "masked at which the text keeps its gold label.");
  else
    page.paragraph(intro +
                   ". Mean \u00b1 standard deviation over images. Blank-out: each patch set to black before "
                   "normalisation, drop of the predicted class's probability (spec 8.1). Deletion/insertion: "
                   "probability of the predicted class as patches are removed from the image or restored onto "
                   "black, most relevant first. Positive/negative perturbation: top-1 accuracy as the most / "
                   "least relevant 10-90% of pixels are blacked out (spec 8.2). Localisation: the top patch "
                   "inside the object's box, and the share of relevance inside it. SaCo: pixels in 10 groups by "
                   "rank, each group replaced by the image's mean alone (spec 19).");
  page.preformatted(settings);
  std::vector<std::string> header{"method"};
  std::vector<std::string> shown;
  for (const auto& [key, heading] : table_columns()) {
    const bool any =
        std::any_of(s.rows.begin(), s.rows.end(), [&](const RowSummary& r) { return r.scalars.at(key).count > 0; });
    if (!any) continue;
    shown.push_back(key);
    header.push_back(heading);
  }
  std::vector<std::vector<TableCell>> rows;
  for (const RowSummary& r : s.rows) {
    std::vector<TableCell> row{r.method};
    for (const auto& key : shown) row.emplace_back(mean_pm_std(r.scalars.at(key)));
    rows.push_back(std::move(row));
  }
  page.table(header, rows,
             text ? "Summary (baseline: random scores; blank-out itself as an oracle row)"
                  : "Summary (baselines: random maps and a centre prior; blank-out itself as an oracle row)");

  page.section("Curves");
  std::vector<double> fractions = curve_fractions(), steps = perturbation_fractions();
  curve_plot(page, s, "Deletion", text ? "share of words masked" : "share of patches removed", "p(predicted class)",
             fractions, &RowSummary::deletion_curve);
  curve_plot(page, s, "Insertion", text ? "share of words restored" : "share of patches restored",
             "p(predicted class)", fractions, &RowSummary::insertion_curve);
  curve_plot(page, s, "Positive perturbation", "share of pixels blacked out (most relevant first)", "top-1 accuracy",
             steps, &RowSummary::positive_accuracy);
  curve_plot(page, s, "Negative perturbation", "share of pixels blacked out (least relevant first)", "top-1 accuracy",
             steps, &RowSummary::negative_accuracy);

  page.section("Spearman correlation between methods");
  std::vector<std::string> matrix_header{""};
  for (const auto& n : s.row_names) matrix_header.push_back(n);
  std::vector<std::vector<TableCell>> matrix;
  for (const RowSummary& r : s.rows) {
    std::vector<TableCell> row{r.method};
    for (std::size_t j = 0; j < s.row_names.size(); ++j)
      row.emplace_back(j < r.spearman_vs.size() ? TableCell(r.spearman_vs[j]) : TableCell("\u2013"));
    matrix.push_back(std::move(row));
  }
  page.table(matrix_header, matrix,
             text ? "Mean over texts of the per-text Spearman correlation of the word scores"
                  : "Mean over images of the per-image Spearman correlation of the patch maps");

  std::vector<std::string> names;
  std::vector<double> cost;
  for (const RowSummary& r : s.rows) {
    const MeanStd& m = r.scalars.at("milliseconds");
    if (m.count == 0) continue;
    names.push_back(r.method);
    cost.push_back(m.mean);
  }
  if (!names.empty()) {
    PlotOptions o;
    o.title = text ? "Cost per text" : "Cost per image";
    o.y_label = "milliseconds";
    o.width = 560;
    o.height = 320;
    o.legend = false;
    page.svg(svg_bar_chart(names, {{"ms", cost}}, o),
             std::string("Mean cost per ") + (text ? "text" : "image") + ", model passes included");
  }

  if (!gallery.empty()) {
    page.section("Gallery");
    for (const GalleryEntry& g : gallery) {
      const int width = g.rgb.cols >= 160 ? 0 : 160;
      cv::Mat bgr;
      cv::cvtColor(g.rgb, bgr, cv::COLOR_RGB2BGR);  // PNG encoding takes OpenCV's channel order
      std::vector<HtmlFigure> figures{{png_data_uri(bgr), g.caption, width}};
      for (const auto& [name, map] : g.maps)
        figures.push_back({png_data_uri(gallery_overlay(g.rgb, map)), name, width});
      page.images(figures);
    }
  }
  return page.html();
}

}  // namespace attnlens
