// The per-image results of `attnlens evaluate` as a CSV (one block of rows per image; io/run_parts.hpp grows it
// while the run goes and reads it back), parsed and summarised over images.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "image_evaluation.hpp"
#include "metrics.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// The CSV header for these result rows (method and baseline names): the fixed columns, the stored curves and one
/// Spearman column per row name.
std::string evaluation_csv_header(const std::vector<std::string>& row_names);

/// One image's block of CSV lines (one per method), each ending in '\n'.
std::string evaluation_csv_rows(const ImageScores& image);

/// Parses a whole per-image table (`text` from its header on; `source` names it in errors): InputError when the
/// header differs (other methods or baselines), a line does not parse, or the last block is incomplete.
std::vector<ImageScores> parse_evaluation_csv(const std::string& text, const std::vector<std::string>& row_names,
                                              const std::string& source);

/// Per-row aggregates over images.
struct RowSummary {
  std::string method;
  std::map<std::string, MeanStd> scalars;               ///< "spearman_blankout", "deletion_auc", ..., "milliseconds"
  std::vector<double> deletion_curve, insertion_curve;  ///< mean at curve_fractions()
  std::vector<double> positive_accuracy, negative_accuracy;  ///< mean at perturbation_fractions()
  std::vector<double> spearman_vs;                           ///< mean over images, one per row name
};
struct EvaluationSummary {
  std::string unit = "image";  ///< what was evaluated: "image" or "text" (the report's wording)
  std::vector<std::string> row_names;
  std::size_t images = 0;
  double accuracy = NAN;  ///< top-1 accuracy of the model on the labelled images
  std::vector<RowSummary> rows;
};
/// The scalar metric names of RowSummary::scalars in table order.
const std::vector<std::string>& summary_scalar_names();
EvaluationSummary summarise(const std::vector<ImageScores>& images, const std::vector<std::string>& row_names);

/// summary.csv: one line per row, mean / std / count of each scalar metric.
std::string summary_csv(const EvaluationSummary& summary);

}  // namespace attnlens
ATTNLENS_API_END
