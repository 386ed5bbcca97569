// `attnlens attention <method> INPUT.npy [options] -o OUT` (see attention_commands.hpp for the flow of each command).
#include "cli/attention_commands.hpp"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>

#include "core/distance.hpp"
#include "core/heads.hpp"

namespace attnlens::cli {

// ---------------------------------------------------------------------------------------------------------------
// Checks and computations (also used by the demo)
// ---------------------------------------------------------------------------------------------------------------

namespace {

/// Row selection (explicit --query-row), then --patches-only, then --scale, for results whose last two dims are
/// (query, key).
void finish_matrix_result(Result& r, const LoadedStack& stack, const CommonOptions& common, Scale scale) {
  if (common.query_row_explicit) {
    r.array = select_row(r.array, common.query_row);
    r.dims.erase(r.dims.end() - 2);  // drop "query"
  }
  if (common.patches_only) r.array = drop_prefix_columns(r.array, stack.layout.prefix);
  scale_rows(r.array, scale);
}

/// --patches-only then --scale for results whose last dim is key.
void finish_vector_result(Result& r, const LoadedStack& stack, const CommonOptions& common, Scale scale) {
  if (common.patches_only) r.array = drop_prefix_columns(r.array, stack.layout.prefix);
  scale_rows(r.array, scale);
}

}  // namespace

void check_rollout_options(const RolloutCliOptions& options) {
  const double r = options.core.discard_ratio;
  if (!(r >= 0.0 && r < 1.0)) {
    throw InputError("--discard-ratio " + fmt_number(r) + " is outside [0, 1)");
  }
  if (options.core.start_layer < 0) {
    throw InputError("--start-layer " + std::to_string(options.core.start_layer) + " must be >= 0");
  }
}

void check_flow_options(const FlowOptions& options) {
  if (options.threads < 0) {
    throw InputError("--threads " + std::to_string(options.threads) + " must be >= 0 (0 = all cores)");
  }
}

void check_distance_options(const DistanceCliOptions& options) {
  if (!(options.patch_size > 0.0) || !std::isfinite(options.patch_size)) {
    throw InputError("--patch-size " + fmt_number(options.patch_size) + " must be a positive number of pixels");
  }
}

void check_heads_options(const HeadsOptions& options) {
  if (options.use_threshold && !(options.threshold > 0.0 && options.threshold <= 1.0)) {
    throw InputError("--threshold " + fmt_number(options.threshold) + " is outside (0, 1]");
  }
}

Result compute_raw(const LoadedStack& stack, const CommonOptions& common, const RawOptions& options) {
  const AttentionView& v = stack.view;
  check_query_row(common.query_row, v.tokens);
  const int layer = options.all_layers ? 0 : resolve_layer(options.layer, v.layers, "--layer");
  Array fused = fuse_heads(v, options.fusion);  // [L,N,N]
  Result r;
  if (options.all_layers) {
    r.array = std::move(fused);
    r.dims = {"layer", "query", "key"};
  } else {
    r.array = take_matrix(fused, layer);
    r.dims = {"query", "key"};
  }
  finish_matrix_result(r, stack, common, options.scale);
  return r;
}

Result compute_rollout(const LoadedStack& stack, const CommonOptions& common, const RolloutCliOptions& options) {
  const AttentionView& v = stack.view;
  check_rollout_options(options);
  check_query_row(common.query_row, v.tokens);
  if (options.core.start_layer >= v.layers) {
    throw InputError("--start-layer " + std::to_string(options.core.start_layer) + " is out of range for " +
                     std::to_string(v.layers) + " layers (valid: 0.." + std::to_string(v.layers - 1) + ")");
  }
  RolloutOptions core = options.core;
  core.prefix_tokens = stack.layout.prefix;
  Array joint = rollout(v, core);  // [L - s, N, N]
  Result r;
  if (options.all_layers) {
    r.array = std::move(joint);
    r.dims = {"layer", "query", "key"};
  } else {
    r.array = take_matrix(joint, joint.shape[0] - 1);
    r.dims = {"query", "key"};
  }
  finish_matrix_result(r, stack, common, options.scale);
  return r;
}

Result compute_flow(const LoadedStack& stack, const CommonOptions& common, const FlowOptions& options,
                    ProgressBar* progress) {
  const AttentionView& v = stack.view;
  check_flow_options(options);
  check_query_row(common.query_row, v.tokens);
  const Array capacities = flow_capacities(v, options.residual);  // [L,N,N]
  Result r;
  if (!options.scope_all) {
    r.array = attention_flow_from(capacities, v.layers, common.query_row);  // [N]
    r.dims = {"key"};
    if (options.normalize) normalize_last_dim(r.array);
    finish_vector_result(r, stack, common, options.scale);
    return r;
  }
  ProgressFn fn;
  if (progress != nullptr && progress->enabled()) {
    fn = [progress](long long done, long long total) { progress->update(done, total); };
  }
  r.array = attention_flow_all(capacities, options.threads, fn);  // [L,N,N]
  if (progress != nullptr) progress->finish();
  r.dims = {"layer", "query", "key"};
  if (options.normalize) normalize_last_dim(r.array);  // over all N values, before --patches-only
  finish_matrix_result(r, stack, common, options.scale);
  return r;
}

Result compute_flow_metzger(const LoadedStack& stack, const CommonOptions& common, const MetzgerOptions& options) {
  const AttentionView& v = stack.view;
  check_query_row(common.query_row, v.tokens);
  const Array capacities = flow_capacities(v, options.residual);
  Result r;
  r.array = metzger_flow(capacities, common.query_row, options.form);  // [N]
  r.dims = {"key"};
  finish_vector_result(r, stack, common, options.scale);
  return r;
}

Result compute_distance(const LoadedStack& stack, const DistanceCliOptions& options) {
  check_distance_options(options);
  DistanceOptions core;
  core.layout = stack.layout;
  core.patch_size = options.patch_size;
  core.renormalize = options.renormalize;
  Result r;
  r.array = mean_attention_distance(stack.view, core);  // [L,H]
  r.dims = {"layer", "head"};
  return r;
}

HeadsResult compute_heads(const LoadedStack& stack, const CommonOptions& common, const HeadsOptions& options) {
  const AttentionView& v = stack.view;
  check_heads_options(options);
  check_query_row(common.query_row, v.tokens);
  const int layer = resolve_layer(options.layer, v.layers, "--layer");
  HeadsResult out;
  out.maps.array = head_maps(v, layer, common.query_row, stack.layout);  // [H,gh,gw]
  out.maps.dims = {"head", "row", "col"};
  if (options.use_threshold) {
    out.masks.array = threshold_masks(out.maps.array, options.threshold);
    out.masks.dims = {"head", "row", "col"};
  }
  return out;
}

void print_distance_table(const Array& distance, double patch_size) {
  if (distance.rank() != 2) return;
  const std::int64_t layers = distance.shape[0], heads = distance.shape[1];
  std::ostringstream s;
  s << "mean attention distance in pixels (patch size " << fmt_number(patch_size) << "), over " << heads
    << " heads\n";
  s << "layer      mean       min       max\n";
  s << std::fixed << std::setprecision(2);
  for (std::int64_t l = 0; l < layers; ++l) {
    const double* row = distance.data.data() + l * heads;
    double sum = 0.0, mn = row[0], mx = row[0];
    for (std::int64_t h = 0; h < heads; ++h) {
      sum += row[h];
      mn = std::min(mn, row[h]);
      mx = std::max(mx, row[h]);
    }
    s << std::setw(5) << l << std::setw(10) << (heads > 0 ? sum / static_cast<double>(heads) : 0.0)
      << std::setw(10) << mn << std::setw(10) << mx << "\n";
  }
  std::cout << s.str() << std::flush;
}

// ---------------------------------------------------------------------------------------------------------------
// Command-line registration
// ---------------------------------------------------------------------------------------------------------------

namespace {

const std::vector<std::string> kFusions{"mean", "max", "min"};
const std::vector<std::string> kResiduals{"half", "none"};
const std::vector<std::string> kScales{"none", "max", "minmax", "sum"};

HeadFusion to_fusion(const std::string& s) {
  if (s == "max") return HeadFusion::Max;
  if (s == "min") return HeadFusion::Min;
  return HeadFusion::Mean;
}

Residual to_residual(const std::string& s) { return s == "none" ? Residual::None : Residual::Half; }

/// Parsed values of one method subcommand (kept alive by the callbacks that capture it).
struct State {
  CommonOptions common;
  CLI::Option* query_row_option = nullptr;
  std::string fusion = "mean", residual = "half", scale = "none", mode = "abnar", scope = "cls", form = "per-token";
  RawOptions raw;
  RolloutCliOptions rollout;
  FlowOptions flow;
  MetzgerOptions metzger;
  DistanceCliOptions distance;
  HeadsOptions heads;
};

/// Options every method accepts. `uses_query_row` / `uses_keys` only change the help text.
void add_common_options(CLI::App* sub, State& st, const std::string& query_row_help, bool uses_keys) {
  sub->add_option("INPUT", st.common.input,
                  "Attention stack .npy (float32/float64, C order): [L,H,N,N] (layer, head, query, key) or "
                  "head-fused [L,N,N]; post-softmax, rows = queries summing to 1")
      ->required()
      ->type_name("INPUT.npy");
  sub->add_option("-o,--output", st.common.output,
                  "Output file (required); format from the extension: .npy (float64), .csv (index columns + one "
                  "column per last-dim element) or .json ({shape, dims, data}). Written atomically")
      ->required()
      ->type_name("OUT");
  sub->add_option("--prefix-tokens", st.common.prefix_tokens,
                  "Tokens before the patch grid (default 1 = CLS; 2 for distilled DeiT: CLS + distillation). "
                  "Spec section 0");
  sub->add_option("--grid", st.common.grid,
                  "Patch grid HxW, e.g. 14x14 (default: square grid of side sqrt(N - prefix); an error if that is "
                  "not a whole number)")
      ->type_name("HxW");
  st.query_row_option = sub->add_option("--query-row", st.common.query_row, query_row_help)->type_name("ROW");
  sub->add_flag("--patches-only", st.common.patches_only,
                uses_keys ? "Drop the first --prefix-tokens columns (CLS etc.) of the key dimension of the output, "
                            "leaving one value per patch (default off)"
                          : "Accepted for uniformity; this method's output has no key dimension (no effect)");
  sub->add_flag("--strict", st.common.strict,
                "Rows whose sum differs from 1 by more than 1e-3 are an error (exit 2) instead of a warning");
  sub->add_flag("-q,--quiet", st.common.quiet,
                "No 'wrote' lines, tables or progress bar on the terminal (warnings and errors still go to stderr)");
}

void add_scale_option(CLI::App* sub, State& st) {
  sub->add_option("--scale", st.scale,
                  "Rescale each output row (last dim, after --patches-only): none (default), max = x/max "
                  "(vit-explain's final step), minmax = (x-min)/(max-min) (Chefer), sum = x/sum. A zero "
                  "denominator leaves the row unchanged")
      ->check(CLI::IsMember(kScales));
}

void add_residual_option(CLI::App* sub, State& st, const std::string& where) {
  sub->add_option("--residual", st.residual,
                  "Residual term added to each layer's head-mean attention" + where +
                      ": half (default) = (A + I) row-normalised = 0.5 A + 0.5 I (Abnar & Zuidema), none = A as "
                      "given (when the input already contains the residual)")
      ->check(CLI::IsMember(kResiduals));
}

/// Reads the common options' post-parse state.
void finalize_common(State& st) { st.common.query_row_explicit = st.query_row_option->count() > 0; }

void write_result(const std::string& path, const Result& r, bool quiet) {
  write_array(path, r.array, r.dims);
  report_written(path, r.array, quiet);
}

LoadedStack load(const State& st) {
  return load_stack(st.common.input, st.common.prefix_tokens, st.common.grid, st.common.strict);
}

void run_raw(State& st) {
  check_output_path(st.common.output, "--output");
  st.raw.fusion = to_fusion(st.fusion);
  st.raw.scale = parse_scale(st.scale);
  const LoadedStack stack = load(st);
  write_result(st.common.output, compute_raw(stack, st.common, st.raw), st.common.quiet);
}

void run_rollout(State& st) {
  check_output_path(st.common.output, "--output");
  st.rollout.core.fusion = to_fusion(st.fusion);
  st.rollout.core.residual = to_residual(st.residual);
  st.rollout.core.mode = st.mode == "vit-explain-reference" ? RolloutMode::VitExplainReference
                         : st.mode == "chefer"              ? RolloutMode::Chefer
                                                            : RolloutMode::Abnar;
  st.rollout.scale = parse_scale(st.scale);
  check_rollout_options(st.rollout);
  const LoadedStack stack = load(st);
  write_result(st.common.output, compute_rollout(stack, st.common, st.rollout), st.common.quiet);
}

void run_flow(State& st) {
  check_output_path(st.common.output, "--output");
  st.flow.residual = to_residual(st.residual);
  st.flow.scope_all = st.scope == "all";
  st.flow.scale = parse_scale(st.scale);
  check_flow_options(st.flow);
  const LoadedStack stack = load(st);
  ProgressBar bar("flow", "sources", st.flow.scope_all && !st.common.quiet);
  const Result r = compute_flow(stack, st.common, st.flow, &bar);
  bar.finish();
  write_result(st.common.output, r, st.common.quiet);
}

void run_flow_metzger(State& st) {
  check_output_path(st.common.output, "--output");
  st.metzger.residual = to_residual(st.residual);
  st.metzger.form = st.form == "shapley" ? MetzgerForm::Shapley : MetzgerForm::PerToken;
  st.metzger.scale = parse_scale(st.scale);
  const LoadedStack stack = load(st);
  write_result(st.common.output, compute_flow_metzger(stack, st.common, st.metzger), st.common.quiet);
}

void run_distance(State& st) {
  check_output_path(st.common.output, "--output");
  check_distance_options(st.distance);
  const LoadedStack stack = load(st);
  const Result r = compute_distance(stack, st.distance);
  write_result(st.common.output, r, st.common.quiet);
  if (!st.common.quiet) print_distance_table(r.array, st.distance.patch_size);
}

void run_heads(State& st) {
  check_output_path(st.common.output, "--output");
  check_heads_options(st.heads);
  std::string masks_path;
  if (st.heads.use_threshold) {
    masks_path = st.heads.masks_output.empty() ? with_suffix(st.common.output, "_masks") : st.heads.masks_output;
    check_output_path(masks_path, "--masks-output");
    if (masks_path == st.common.output) {
      throw InputError("--masks-output must differ from --output ('" + masks_path + "')");
    }
  }
  const LoadedStack stack = load(st);
  const HeadsResult r = compute_heads(stack, st.common, st.heads);
  // Both arrays exist before either file is written; if the second write fails the first file is removed.
  write_array(st.common.output, r.maps.array, r.maps.dims);
  if (st.heads.use_threshold) {
    try {
      write_array(masks_path, r.masks.array, r.masks.dims);
    } catch (...) {
      std::remove(st.common.output.c_str());
      throw;
    }
  }
  report_written(st.common.output, r.maps.array, st.common.quiet);
  if (st.heads.use_threshold) report_written(masks_path, r.masks.array, st.common.quiet);
}

/// Creates a method subcommand whose callback arms `action` with `run(state)`.
CLI::App* add_method(CLI::App* attention, Action& action, const std::string& name, const std::string& description,
                     const std::shared_ptr<State>& st, void (*run)(State&)) {
  CLI::App* sub = attention->add_subcommand(name, description);
  sub->callback([st, run, &action] {
    finalize_common(*st);
    action = [st, run] { run(*st); };
  });
  return sub;
}

const char* kQueryRowMatrix =
    "Query token whose row is written (default 0 = CLS; 1 = distillation token of distilled DeiT). Only when "
    "given explicitly is the output reduced to that row ([N] or [L,N]); otherwise full [N,N] matrices are written";

}  // namespace

void add_attention_commands(CLI::App& app, Action& action) {
  CLI::App* attention = app.add_subcommand(
      "attention",
      "Attention-graph explanations from a saved attention stack INPUT.npy: [L,H,N,N] or head-fused [L,N,N] "
      "post-softmax attention (rows = queries). INPUT is validated first (dtype, shape, patch grid, NaN/Inf/"
      "negative values, row sums); bad input exits with code 2 and writes nothing");
  // At most one method; "no method" is reported below, so that a misspelt method is named in the error
  // ("not expected: saliency") instead of CLI11's generic "A subcommand is required".
  attention->require_subcommand(0, 1);
  attention->final_callback([attention] {
    if (attention->get_subcommands().empty()) {
      throw CLI::RequiredError("attention: a method (raw, rollout, flow, flow-metzger, distance or heads)");
    }
  });
  // raw ------------------------------------------------------------------------------------------------------
  {
    auto st = std::make_shared<State>();
    CLI::App* sub = add_method(attention, action, "raw",
                               "Raw attention of one layer with the heads fused: [N,N] (query, key), [L,N,N] with "
                               "--all-layers, or one row [N] / [L,N] with an explicit --query-row",
                               st, run_raw);
    add_common_options(sub, *st, kQueryRowMatrix, true);
    sub->add_option("--fusion", st->fusion,
                    "Head fusion: mean (default), max or min, elementwise over heads")
        ->check(CLI::IsMember(kFusions));
    auto* layer = sub->add_option("--layer", st->raw.layer,
                                  "Layer to write (default -1 = last; negative counts from the end as in Python)");
    auto* all = sub->add_flag("--all-layers", st->raw.all_layers, "Write every layer: [L,N,N] (layer, query, key)");
    all->excludes(layer);
    add_scale_option(sub, *st);
  }

  // rollout --------------------------------------------------------------------------------------------------
  {
    auto st = std::make_shared<State>();
    CLI::App* sub = add_method(
        attention, action, "rollout",
        "Attention rollout J_l = A_l * J_(l-1) (Abnar & Zuidema 2020; spec section 1): the joint attention after "
        "the last layer [N,N] (query, key), all layers from --start-layer with --all-layers, or one row with an "
        "explicit --query-row (row 0 = the CLS explanation)",
        st, run_rollout);
    add_common_options(sub, *st, kQueryRowMatrix, true);
    sub->add_option("--mode", st->mode,
                    "abnar (default): fuse, discard (never prefix rows/columns), + residual, true row "
                    "normalisation. vit-explain-reference: jacobgil/vit-explain exactly, incl. protecting only "
                    "entry [0,0] from discarding and its column-wise normalisation quirk (spec 1.2; its own CLI "
                    "uses --fusion max --discard-ratio 0.9 --patches-only --scale max). chefer: Chefer et al. "
                    "baseline rollout (mean fusion, no discard; spec 1.3)")
        ->check(CLI::IsMember({"abnar", "vit-explain-reference", "chefer"}));
    sub->add_option("--fusion", st->fusion, "Head fusion: mean (default), max or min")
        ->check(CLI::IsMember(kFusions));
    sub->add_option("--discard-ratio", st->rollout.core.discard_ratio,
                    "Share in [0,1) of the N*N fused entries per layer, smallest first, set to 0 before the "
                    "residual is added (default 0 = none; vit-explain uses 0.9)");
    add_residual_option(sub, *st,
                        " (abnar mode only; vit-explain-reference always uses (F + I)/2, chefer (A + I) "
                        "row-normalised)");
    sub->add_option("--start-layer", st->rollout.core.start_layer,
                    "First layer (0-based) in the product (default 0; Chefer's perturbation scripts use 1)");
    sub->add_flag("--all-layers", st->rollout.all_layers,
                  "Write the joint attention after every layer from --start-layer on: [L-s,N,N] (layer, query, key)");
    add_scale_option(sub, *st);
  }

  // flow -----------------------------------------------------------------------------------------------------
  {
    auto st = std::make_shared<State>();
    CLI::App* sub = add_method(
        attention, action, "flow",
        "Attention flow (Abnar & Zuidema 2020; spec 3.1): exact maximum flow through the layered graph of "
        "head-mean attention from a node to every input token. --scope cls: from node (last layer, --query-row) "
        "-> [N] (key). --scope all: from every node (l,q) -> [L,N,N] (layer, query, key)",
        st, run_flow);
    add_common_options(sub, *st,
                       "Token whose flow is computed at the last layer for --scope cls (default 0 = CLS). With "
                       "--scope all and an explicit --query-row only that row of each layer is written: [L,N]",
                       true);
    add_residual_option(sub, *st, " to form the flow graph's capacities");
    sub->add_option("--scope", st->scope,
                    "cls (default): one source node; all: every node of every layer (L*N max-flow sources; slow "
                    "for large N, see --threads)")
        ->check(CLI::IsMember({"cls", "all"}));
    sub->add_flag("--normalize", st->flow.normalize,
                  "Divide each row by its sum over all N inputs, as Abnar's compute_flows does (default off: raw "
                  "max-flow values)");
    sub->add_option("--threads", st->flow.threads, "Threads for --scope all (default 1; 0 = all cores)");
    add_scale_option(sub, *st);
  }

  // flow-metzger ---------------------------------------------------------------------------------------------
  {
    auto st = std::make_shared<State>();
    CLI::App* sub = add_method(
        attention, action, "flow-metzger",
        "Input-to-output attention flow after Metzger et al. 2022 (spec 3.2; unverified against their code): "
        "edges point up from input tokens to the output node (--query-row at the last layer) -> [N] (key)",
        st, run_flow_metzger);
    add_common_options(sub, *st, "Output node: this token at the last layer (default 0 = CLS)", true);
    add_residual_option(sub, *st, " to form the flow graph's capacities");
    sub->add_option("--form", st->form,
                    "per-token (default): max flow from each input token alone to the output node; shapley: one "
                    "max flow from all inputs at once, reporting the flow leaving each token (sums to the total; "
                    "not unique in general)")
        ->check(CLI::IsMember({"per-token", "shapley"}));
    add_scale_option(sub, *st);
  }

  // distance -------------------------------------------------------------------------------------------------
  {
    auto st = std::make_shared<State>();
    CLI::App* sub = add_method(
        attention, action, "distance",
        "Mean attention distance per layer and head in input pixels (Dosovitskiy et al. Fig. 7, probing-vits; "
        "spec 6) -> [L,H] (layer, head); prints per-layer mean/min/max over heads",
        st, run_distance);
    add_common_options(sub, *st, "Not used by this method (all query patches are averaged)", false);
    sub->add_option("--patch-size", st->distance.patch_size,
                    "Patch side in pixels (required, > 0; e.g. 16 for ViT-B/16, 8 for DINO ViT-S/8)")
        ->required();
    sub->add_flag("--renormalize", st->distance.renormalize,
                  "Re-normalise each query's patch attention to sum to 1 after dropping the prefix columns "
                  "(default off = reference: CLS mass counts as distance 0)");
  }

  // heads ----------------------------------------------------------------------------------------------------
  {
    auto st = std::make_shared<State>();
    CLI::App* sub = add_method(
        attention, action, "heads",
        "Per-head attention maps of one query row on the patch grid (DINO visualize_attention.py; spec 7) -> "
        "[H,gh,gw] (head, row, col), prefix columns dropped; optional mass-threshold masks",
        st, run_heads);
    add_common_options(sub, *st, "Query token whose attention is mapped (default 0 = CLS)", false);
    sub->add_option("--layer", st->heads.layer, "Layer (default -1 = last; negative counts from the end)");
    auto* threshold = sub->add_option_function<double>(
        "--threshold",
        [st](double t) {
          st->heads.use_threshold = true;
          st->heads.threshold = t;
        },
        "Also write 0/1 masks keeping, per head, the smallest set of largest patches holding at least this share "
        "of the head's mass, in (0,1] (default: no masks; DINO uses 0.6)");
    sub->add_option("--masks-output", st->heads.masks_output,
                    "Masks file (default: OUT with '_masks' before the extension); needs --threshold")
        ->needs(threshold)
        ->type_name("PATH");
  }

  // Set last: CLI11 copies a parent's footer into subcommands created after it.
  attention->footer(
      "Methods: raw (one layer's fused heads), rollout (Abnar & Zuidema 2020; vit-explain; Chefer baseline; spec "
      "section 1), flow (Abnar & Zuidema attention flow, exact max-flow; spec 3.1), flow-metzger (Metzger et al. "
      "2022 input-to-output flow; spec 3.2), distance (mean attention distance, Dosovitskiy et al. / probing-vits; "
      "spec 6), heads (DINO per-head maps and mass-threshold masks; spec 7).\n"
      "Run 'attnlens attention <method> --help' for each method's options.");
}

}  // namespace attnlens::cli
