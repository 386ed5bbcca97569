// A run split over processes: scheduler job-array shards (`--shard K/N`) or the ranks of an MPI job, each writing
// its own part of the output folder, and the merge that joins the parts into exactly what one process would have
// written. Used by `attnlens evaluate` (images and --text), `attack fgsm` and `attack words`.
//
// A run grows one table (RunTable): a CSV whose lines each start with their item's index, every item a block of
// the same number of lines. Items are computed in units of `unit` consecutive items (1 for evaluate; fgsm's
// batches), units are dealt round-robin (unit u to share u mod N, so shares stay balanced when items differ in
// cost), and a unit's numbers do not depend on which process computed it, so the merged table equals one process's.
//
// Layout of an output folder OUT:
//   OUT/run.json, OUT/<table>                 one process (and the merged result)
//   OUT/shard-K-of-N/run.json, .../<table>    share K of N (1-based), with what the finisher needs besides the table
//                                             (the evaluation's gallery/, fgsm's adversarial pictures)
// Every part carries the run's identity (run.json: the settings and data that decide its numbers); a part whose
// identity differs is foreign and refused.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// The table a run grows (see the file comment).
struct RunTable {
  std::string name;               ///< file name: per_image.csv, per_text.csv, fgsm.csv, attack_words_per_text.csv
  std::string header;             ///< its first line, '\n' included
  std::size_t rows_per_item = 1;  ///< lines per item
  std::size_t items = 0;
  std::size_t unit = 1;  ///< items computed together

  std::size_t unit_of(std::size_t item) const { return item / unit; }
  std::size_t units() const { return unit == 0 ? 0 : (items + unit - 1) / unit; }
};

/// Share `index` (0-based) of `count`: the units u with u % count == index.
struct WorkShare {
  int index = 0;
  int count = 1;

  bool owns(std::size_t unit) const { return static_cast<int>(unit % static_cast<std::size_t>(count)) == index; }
  /// "K/N" with 1 <= K <= N (1-based, as job arrays count); InputError otherwise.
  static WorkShare parse(const std::string& text);
  /// "shard-K-of-N": the part's folder inside OUT.
  std::string folder() const;
  /// "K of N"
  std::string label() const;
};

/// The complete item blocks of one table file.
struct TableBlocks {
  std::vector<std::string> blocks;  ///< by item index, `table.items` entries; "" where the file has no block
  std::size_t complete_bytes = 0;   ///< where the last complete block ends (truncate there before appending)
};

/// Reads a table file. A block cut short by an interruption (a partial last line, fewer lines than an item has) is
/// ignored; an item written twice keeps its first block. InputError when the header is not `table.header`, or a
/// line's index is not a number below `table.items`, or a block mixes indices.
TableBlocks read_table_blocks(const std::string& path, const RunTable& table);

/// One part of a run folder.
struct RunPart {
  std::string dir;                 ///< the folder holding run.json and the table
  std::optional<WorkShare> share;  ///< empty for OUT itself
};

/// OUT itself when it holds the table `table_name`, then every OUT/shard-K-of-N folder (holding it or not), by N
/// then K. Folders named like shards but malformed (shard-0-of-2, shard-3-of-2) are an InputError.
std::vector<RunPart> find_run_parts(const std::string& out, const std::string& table_name);

/// InputError naming the first part whose run.json exists and is not `identity` (JSON text; compared as JSON): a
/// part of another run. Parts without run.json yet (a shard just starting) pass.
void check_run_identities(const std::vector<RunPart>& parts, const std::string& identity);

/// The rows found in a run folder's parts.
struct RunRows {
  std::vector<std::string> blocks;   ///< by item index; "" for the missing ones
  std::vector<std::size_t> missing;  ///< the indices no part holds
  /// The table one process writes: the header and every block in index order.
  std::string table_text(const RunTable& table) const;
};

/// Reads every part's complete blocks (a part listed earlier wins an item; same run, same rows). InputError naming
/// the part whose run.json is missing, unreadable or not `identity`, whose table does not parse, or which holds an
/// item of another share.
RunRows read_run_parts(const std::vector<RunPart>& parts, const RunTable& table, const std::string& identity);

/// "3 of 12 items are missing (1, 4, 7); shard 2 of 3 has no folder (OUT/shard-2-of-3)": the missing indices (the
/// first 20) and, for each share count N seen, the shares whose folders are absent or incomplete.
std::string missing_items_message(const std::vector<std::size_t>& missing, const RunTable& table,
                                  const std::vector<RunPart>& parts, const std::string& out);

}  // namespace attnlens
ATTNLENS_API_END
