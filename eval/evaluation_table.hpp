// The per-image results of `attnlens evaluate` as a CSV that grows while the run goes (one block of rows per image,
// flushed as soon as the image is done), read back to resume a stopped run, and summarised over images.
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

/// Reads a per-image CSV written with the same row names. Only complete blocks count: a block cut short by an
/// interrupted run (a partial last line, or fewer lines than rows) is dropped and `complete_bytes` says where the
/// complete part ends, so the caller can truncate the file there before appending. Throws InputError when the
/// header differs (another configuration) or a complete line does not parse.
std::vector<ImageScores> read_evaluation_csv(const std::string& path, const std::vector<std::string>& row_names,
                                             std::size_t* complete_bytes);

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
