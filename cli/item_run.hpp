// How the commands that score a data set item by item (`evaluate`, `evaluate --text`, `attack fgsm`,
// `attack words`) run in one process, in a scheduler shard (--shard K/N) or as the ranks of an MPI job, and how
// the parts are merged (io/run_parts.hpp has the layout). One flow for every case: each process computes the
// units of its share that no part of the folder holds yet, appending each item's rows to its part as soon as the
// unit is done; then the process that finishes the run (the single process, MPI rank 0, or whichever shard finds
// every item present) merges the parts into OUT/<table> and hands the merged table to the command's finisher,
// which derives the summaries and the report: exactly what one uninterrupted process writes.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/attention_commands.hpp"
#include "io/run_parts.hpp"

namespace attnlens::cli {

struct ItemRunOptions {
  std::string output;  ///< OUT
  bool resume = false;
  std::string shard;   ///< "K/N" or empty
  bool quiet = false;
  /// A command run in stages (prune) whose next stage needs the whole of this one: under mpirun every rank, not
  /// only rank 0, reads the merged table back and run_items returns it.
  bool table_on_every_rank = false;
};

/// The run's identity (run.json): every setting and the data that decide its numbers, plus "kind" (which finisher
/// merges it: "image", "text", "fgsm", "words", "prune"), "command" and "noun" (the progress bar's label and unit),
/// "table" (run_table_json) and optionally "when_complete" (what a shard that finishes before the others tells the
/// user to do next; default: attnlens merge OUT) and "saved_folders" (folders of a part that only the units fill,
/// such as evaluate's gallery/: a fresh run in OUT removes them with the table).
using RunIdentity = nlohmann::json;

nlohmann::json run_table_json(const RunTable& table);
/// InputError when the identity has no well-formed "table".
RunTable run_table_of(const RunIdentity& identity);

/// What a finisher writes: files (path, content), each atomically, and the lines for the terminal.
struct RunOutputs {
  std::vector<std::pair<std::string, std::string>> files;
  std::string terminal;
};

/// Derives a complete run's outputs from its merged table (`table_text`, header included). `part_dirs`: OUT and
/// every shard folder, where the units saved what the table does not hold (pictures); `threads`: this process's
/// LibTorch threads when it computed items itself (summary.json records them).
using RunFinisher = std::function<RunOutputs(const std::string& out, const RunIdentity& identity,
                                             const std::string& table_text, const std::vector<std::string>& part_dirs,
                                             std::optional<int> threads)>;

/// Makes `attnlens merge` able to finish runs of this kind; the commands register theirs when they are added.
void register_run_kind(const std::string& kind, RunFinisher finisher);

/// Computes the items [first, first + count) (one unit) and returns one block of table lines per item (each line
/// starting with its item's index and ending in '\n'). `part_dir`: where to save what the finisher reads besides
/// the table.
using UnitFunction =
    std::function<std::vector<std::string>(std::size_t first, std::size_t count, const std::string& part_dir)>;

/// Runs this process's share of the units (see the file comment) and, when the run is complete, merges it with the
/// finisher registered for identity["kind"]. Returns the merged table (header included) when the run is complete
/// (under mpirun at rank 0, and at the other ranks with table_on_every_rank); nothing while other shards are still
/// missing. InputError for a foreign part, a --resume of another run, --shard
/// under mpirun; at MPI rank 0, for ranks that failed (naming the items still missing, which --resume fills).
std::optional<std::string> run_items(const ItemRunOptions& options, const RunIdentity& identity,
                                     const UnitFunction& compute);

/// Merges the parts of the run in `out` (its identity read from them): InputError naming missing items and shards,
/// or a foreign part.
void merge_run(const std::string& out, bool quiet);

/// --threads, --resume and --shard K/N for a command that runs its items this way; `units` names what the shares
/// are made of ("images", "batches", "texts"); `shard_note` replaces the default end of --shard's help (the last
/// shard to finish merges, or attnlens merge DIR does).
void add_run_options(CLI::App* app, int& threads, bool& resume, std::string& shard, const std::string& units,
                     const std::string& shard_note = "");

/// Registers `attnlens merge OUT`.
void add_merge_command(CLI::App& app, Action& action);

}  // namespace attnlens::cli
