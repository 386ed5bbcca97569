// A run split over processes: scheduler job-array shards (`--shard K/N`) or the ranks of an MPI job, each writing
// its own part of the output folder, and the merge that joins the parts into exactly what one process would have
// written. Items are dealt round-robin on their index (item i to share i mod N), so shares stay balanced when items
// differ in cost, and every item is computed alone (ImageEvaluator, TextEvaluator), so its row does not depend on
// which process computed it.
//
// Layout of an output folder OUT:
//   OUT/run.json, OUT/<table>                 one process (and the merged result)
//   OUT/shard-K-of-N/run.json, .../<table>    share K of N (1-based), with gallery/ for the report's pictures
// Every part carries the run's identity (run.json: the settings and data that decide its numbers); a part whose
// identity differs is foreign and refused.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "image_evaluation.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Share `index` (0-based) of `count`: the items i with i % count == index.
struct WorkShare {
  int index = 0;
  int count = 1;

  bool owns(std::size_t item) const { return static_cast<int>(item % static_cast<std::size_t>(count)) == index; }
  /// "K/N" with 1 <= K <= N (1-based, as job arrays count); InputError otherwise.
  static WorkShare parse(const std::string& text);
  /// "shard-K-of-N": the part's folder inside OUT.
  std::string folder() const;
  /// "K of N"
  std::string label() const;
};

/// One part of a run folder.
struct RunPart {
  std::string dir;                 ///< the folder holding run.json and the table
  std::optional<WorkShare> share;  ///< empty for OUT itself
};

/// OUT itself when it holds `table`, then every OUT/shard-K-of-N folder (holding the table or not), by N then K.
/// Folders named like shards but malformed (shard-0-of-2, shard-3-of-2) are an InputError.
std::vector<RunPart> find_run_parts(const std::string& out, const std::string& table);

/// InputError naming the first part whose run.json exists and is not `identity` (JSON text; compared as JSON): a
/// part of another run. Parts without run.json yet (a shard just starting) pass.
void check_run_identities(const std::vector<RunPart>& parts, const std::string& identity);

/// The rows found in a run folder's parts.
struct RunRows {
  std::vector<ImageScores> items;    ///< by index, each index once (a part listed earlier wins; same run, same rows)
  std::vector<std::size_t> missing;  ///< indices < item_count that no part holds
};

/// Reads the complete row blocks of every part (a block cut short by an interruption is ignored). InputError naming
/// the part whose run.json is missing, unreadable or not `identity` (JSON text; compared as JSON), or whose table
/// does not parse.
RunRows read_run_parts(const std::vector<RunPart>& parts, const std::string& table, const std::string& identity,
                       const std::vector<std::string>& row_names, std::size_t item_count);

/// "3 of 12 items are missing (1, 4, 7); shard 2 of 3 has no rows (OUT/shard-2-of-3)": the missing indices (the first
/// 20) and, for each share count N seen, the shares whose folders are absent or incomplete.
std::string missing_items_message(const std::vector<std::size_t>& missing, std::size_t item_count,
                                  const std::vector<RunPart>& parts, const std::string& out);

}  // namespace attnlens
ATTNLENS_API_END
