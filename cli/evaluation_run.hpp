// How `attnlens evaluate` (images and --text) runs over its items in one process, in a scheduler shard (--shard K/N)
// or as the ranks of an MPI job, and how the parts are merged (eval/run_parts.hpp has the layout). One flow for
// every case: each process computes the items of its share that no part of the folder holds yet, appending each
// item's rows to its part as soon as they are done; then the process that finishes the run (the single process,
// MPI rank 0, or whichever shard finds every item present) merges the parts into OUT/<table>, summary.csv,
// summary.json and report.html, exactly what one uninterrupted process writes.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/attention_commands.hpp"
#include "eval/image_evaluation.hpp"

namespace attnlens::cli {

struct EvaluationRunOptions {
  std::string output;  ///< OUT
  bool resume = false;
  std::string shard;   ///< "K/N" or empty
  bool quiet = false;
};

/// The run's identity (run.json): every setting and the data that decide its numbers, plus "kind" ("image" or
/// "text"), "table" (per_image.csv / per_text.csv), "rows" (the row names), "items" (their count) and "gallery".
using RunIdentity = nlohmann::json;

/// Computes item i, and saves its gallery entry into `part_dir` when it has one.
using ItemFunction = std::function<ImageScores(std::size_t item, const std::string& part_dir)>;

/// Runs this process's share of the items (see the file comment) and, when the run is complete, merges it.
/// InputError for a foreign part, a --resume of another run, --shard under mpirun; at MPI rank 0, for ranks that
/// failed (naming the items still missing, which --resume fills).
void run_evaluation_items(const EvaluationRunOptions& options, const RunIdentity& identity,
                          const ItemFunction& compute);

/// Merges the parts of the run in `out` (its identity read from them): InputError naming missing items and shards,
/// or a foreign part.
void merge_evaluation(const std::string& out, bool quiet);

/// Registers `attnlens merge OUT`.
void add_merge_command(CLI::App& app, Action& action);

}  // namespace attnlens::cli
