// `attnlens attention <method>` subcommands and the per-method computations the demo reuses.
//
// Each subcommand is thin: parse -> check output path(s) and option ranges -> load + validate INPUT -> call one core
// function -> shape the result (row selection, --patches-only, --scale) -> write atomically -> report.
#pragma once

#include <functional>
#include <string>

#include "cli/common.hpp"
#include "core/attention_flow.hpp"
#include "core/fusion.hpp"
#include "core/rollout.hpp"
#include "io/array_writer.hpp"

namespace CLI {
class App;
}

namespace attnlens::cli {

/// What a parsed subcommand will run once parsing succeeded (set by the subcommand's callback).
using Action = std::function<void()>;

/// Options shared by every method.
struct CommonOptions {
  std::string input;
  std::string output;
  int prefix_tokens = 1;
  std::string grid;  ///< "HxW"; empty = square grid inferred from N - prefix
  int query_row = 0;
  bool query_row_explicit = false;  ///< --query-row given on the command line: raw/rollout/flow-all write one row
  bool patches_only = false;
  bool strict = false;
  bool quiet = false;
};

/// A result array with its dimension names (CSV index columns / JSON "dims").
struct Result {
  Array array;
  DimNames dims;
};

struct RawOptions {
  HeadFusion fusion = HeadFusion::Mean;
  int layer = -1;
  bool all_layers = false;
  Scale scale = Scale::None;
};

struct RolloutCliOptions {
  RolloutOptions core;  ///< prefix_tokens is taken from the loaded layout
  bool all_layers = false;
  Scale scale = Scale::None;
};

struct FlowOptions {
  Residual residual = Residual::Half;
  bool scope_all = false;
  bool normalize = false;
  int threads = 1;
  Scale scale = Scale::None;
};

struct MetzgerOptions {
  Residual residual = Residual::Half;
  MetzgerForm form = MetzgerForm::PerToken;
  Scale scale = Scale::None;
};

struct DistanceCliOptions {
  double patch_size = 0.0;
  bool renormalize = false;
};

struct HeadsOptions {
  int layer = -1;
  bool use_threshold = false;
  double threshold = 0.6;
  std::string masks_output;  ///< empty = OUT with "_masks" before the extension
};

struct HeadsResult {
  Result maps;
  Result masks;  ///< empty array unless use_threshold
};

// Option checks that need no input (run before loading), then the computations (option checks that need the input's
// sizes run first inside each). None of these write files.
void check_rollout_options(const RolloutCliOptions& options);
void check_flow_options(const FlowOptions& options);
void check_distance_options(const DistanceCliOptions& options);
void check_heads_options(const HeadsOptions& options);

Result compute_raw(const LoadedStack& stack, const CommonOptions& common, const RawOptions& options);
Result compute_rollout(const LoadedStack& stack, const CommonOptions& common, const RolloutCliOptions& options);
/// `progress` may be null (no bar).
Result compute_flow(const LoadedStack& stack, const CommonOptions& common, const FlowOptions& options,
                    ProgressBar* progress);
Result compute_flow_metzger(const LoadedStack& stack, const CommonOptions& common, const MetzgerOptions& options);
Result compute_distance(const LoadedStack& stack, const DistanceCliOptions& options);
HeadsResult compute_heads(const LoadedStack& stack, const CommonOptions& common, const HeadsOptions& options);

/// Prints the per-layer summary table of a [L,H] mean-attention-distance array to stdout.
void print_distance_table(const Array& distance, double patch_size);

/// Registers `attention` and its method subcommands on `app`; the chosen one stores its work in `action`.
void add_attention_commands(CLI::App& app, Action& action);

/// Registers `demo` (cli/demo_command.cpp).
void add_demo_command(CLI::App& app, Action& action);

/// Registers `predict` and `capture` (cli/model_commands.cpp) and `explain` (cli/explain_command.cpp). Declared here
/// so that main.cpp needs no LibTorch header.
void add_model_commands(CLI::App& app, Action& action);
void add_explain_command(CLI::App& app, Action& action);

/// Registers `evaluate` (cli/evaluate_command.cpp): faithfulness metrics over an image data set.
void add_evaluate_command(CLI::App& app, Action& action);
/// Registers `fgsm` under the `attack` group (cli/attack_fgsm_command.cpp).
void add_attack_fgsm_command(CLI::App& attack, Action& action);

/// Registers `tokenize` (cli/tokenize_command.cpp): BERT WordPiece encodings as JSON.
void add_tokenize_command(CLI::App& app, Action& action);

}  // namespace attnlens::cli
