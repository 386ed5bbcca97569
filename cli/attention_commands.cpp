// `attnlens attention <method> INPUT.npy [options] -o OUT` (see attention_commands.hpp for the flow of each command).
#include "cli/attention_commands.hpp"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <tuple>

namespace attnlens::cli {

// ---------------------------------------------------------------------------------------------------------------
// Command-line registration
// ---------------------------------------------------------------------------------------------------------------

namespace {

const std::vector<std::string> kFusions{"mean", "max", "min"};
const std::vector<std::string> kResiduals{"half", "none"};
const std::vector<std::string> kScales{"none", "max", "minmax", "sum"};

/// Parsed values of one method subcommand (kept alive by the callbacks that capture it).
struct State {
  std::string input, output, grad_input;
  int prefix_tokens = 1;
  std::string grid;  ///< "HxW"; empty = square grid inferred from N - prefix (only where a grid is needed)
  int query_row = 0;
  CLI::Option* query_row_option = nullptr;
  bool patches_only = false, strict = false, quiet = false;
  std::string fusion = "mean", residual = "half", scale = "none", mode = "abnar", scope = "cls", form = "per-token";
  RawSettings raw;
  RolloutSettings rollout;
  FlowSettings flow;
  MetzgerSettings metzger;
  DistanceSettings distance;
  HeadMapsSettings heads;
  GradientRolloutSettings grad_rollout;
  CheferSettings chefer;
  std::string masks_output;  ///< heads: empty = OUT with "_masks" before the extension
};

/// Options every method accepts. `uses_query_row` / `uses_keys` only change the help text.
void add_common_options(CLI::App* sub, State& st, const std::string& query_row_help, bool uses_keys) {
  sub->add_option("INPUT", st.input,
                  "Attention stack .npy (float32/float64, C order): [L,H,N,N] (layer, head, query, key) or "
                  "head-fused [L,N,N]; post-softmax, rows = queries summing to 1")
      ->required()
      ->type_name("INPUT.npy");
  sub->add_option("-o,--output", st.output,
                  "Output file (required); format from the extension: .npy (float64), .csv (index columns + one "
                  "column per last-dim element) or .json ({shape, dims, data}). Written atomically")
      ->required()
      ->type_name("OUT");
  sub->add_option("--prefix-tokens", st.prefix_tokens,
                  "Tokens before the patch grid (default 1 = CLS; 2 for distilled DeiT: CLS + distillation; 5 for "
                  "DINOv2 with registers: CLS + 4 registers; `attnlens capture` prints the model's). Spec section 0");
  sub->add_option("--grid", st.grid,
                  "Patch grid HxW, e.g. 14x14, checked against N when given. Only distance and heads lay tokens out "
                  "on a grid (default there: a square grid of side sqrt(N - prefix)); the other methods also run on "
                  "text-shaped stacks without one")
      ->type_name("HxW");
  st.query_row_option = sub->add_option("--query-row", st.query_row, query_row_help)->type_name("ROW");
  sub->add_flag("--patches-only", st.patches_only,
                uses_keys ? "Drop the first --prefix-tokens columns (CLS etc.) of the key dimension of the output, "
                            "leaving one value per patch (default off)"
                          : "Accepted for uniformity; this method's output has no key dimension (no effect)");
  sub->add_flag("--strict", st.strict,
                "Rows whose sum differs from 1 by more than 1e-3 are an error (exit 2) instead of a warning");
  sub->add_flag("-q,--quiet", st.quiet,
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

/// The settings every method shares, from the parsed common options. Only an explicit --query-row sets the query
/// row: matrix methods (raw, rollout, flow --scope all, the gradient methods) then write that row only.
void apply_common(const State& st, StackSettings& s) {
  s.prefix_tokens = st.prefix_tokens;
  std::tie(s.grid_h, s.grid_w) = parse_grid(st.grid);
  if (st.query_row_option->count() > 0) s.query_row = st.query_row;
  s.patches_only = st.patches_only;
  s.scale = parse_scale(st.scale);
}

HeadFusion to_fusion(const std::string& s) {
  if (s == "max") return HeadFusion::Max;
  if (s == "min") return HeadFusion::Min;
  return HeadFusion::Mean;
}

Residual to_residual(const std::string& s) { return s == "none" ? Residual::None : Residual::Half; }

void write_result(const std::string& path, const LabeledArray& r, bool quiet) {
  write_array(path, r.array, r.dims);
  report_written(path, r.array, quiet);
}

void run_raw(State& st) {
  check_output_path(st.output, "--output");
  apply_common(st, st.raw);
  st.raw.fusion = to_fusion(st.fusion);
  const LoadedStack stack = load_stack(st.input, st.strict);
  write_result(st.output, raw_attention(stack.view, st.raw), st.quiet);
}

void run_rollout(State& st) {
  check_output_path(st.output, "--output");
  apply_common(st, st.rollout);
  st.rollout.fusion = to_fusion(st.fusion);
  st.rollout.residual = to_residual(st.residual);
  st.rollout.mode = st.mode == "vit-explain-reference" ? RolloutMode::VitExplainReference
                    : st.mode == "chefer"              ? RolloutMode::Chefer
                                                       : RolloutMode::Abnar;
  const LoadedStack stack = load_stack(st.input, st.strict);
  write_result(st.output, attention_rollout(stack.view, st.rollout), st.quiet);
}

void run_flow(State& st) {
  check_output_path(st.output, "--output");
  apply_common(st, st.flow);
  st.flow.residual = to_residual(st.residual);
  st.flow.scope_all = st.scope == "all";
  const LoadedStack stack = load_stack(st.input, st.strict);
  ProgressBar bar("flow", "sources", st.flow.scope_all && !st.quiet);
  ProgressFn progress;
  if (bar.enabled()) progress = [&bar](long long done, long long total) { bar.update(done, total); };
  const LabeledArray r = attention_flow(stack.view, st.flow, progress);
  bar.finish();
  write_result(st.output, r, st.quiet);
}

void run_flow_metzger(State& st) {
  check_output_path(st.output, "--output");
  apply_common(st, st.metzger);
  st.metzger.residual = to_residual(st.residual);
  st.metzger.form = st.form == "shapley" ? MetzgerForm::Shapley : MetzgerForm::PerToken;
  const LoadedStack stack = load_stack(st.input, st.strict);
  write_result(st.output, attention_flow_metzger(stack.view, st.metzger), st.quiet);
}

void run_distance(State& st) {
  check_output_path(st.output, "--output");
  apply_common(st, st.distance);
  const LoadedStack stack = load_stack(st.input, st.strict);
  const LabeledArray r = attention_distance(stack.view, st.distance);
  write_result(st.output, r, st.quiet);
  if (!st.quiet) print_distance_table(r.array, st.distance.patch_size);
}

void run_heads(State& st) {
  check_output_path(st.output, "--output");
  apply_common(st, st.heads);
  std::string masks_path;
  if (st.heads.threshold) {
    masks_path = st.masks_output.empty() ? with_suffix(st.output, "_masks") : st.masks_output;
    check_output_path(masks_path, "--masks-output");
    if (masks_path == st.output) {
      throw InputError("--masks-output must differ from --output ('" + masks_path + "')");
    }
  }
  const LoadedStack stack = load_stack(st.input, st.strict);
  const HeadMaps r = attention_head_maps(stack.view, st.heads);
  // Both arrays exist before either file is written; if the second write fails the first file is removed.
  write_array(st.output, r.maps.array, r.maps.dims);
  if (st.heads.threshold) {
    try {
      write_array(masks_path, r.masks.array, r.masks.dims);
    } catch (...) {
      std::remove(st.output.c_str());
      throw;
    }
  }
  report_written(st.output, r.maps.array, st.quiet);
  if (st.heads.threshold) report_written(masks_path, r.masks.array, st.quiet);
}

/// The gradient stack of grad-rollout and chefer, checked like the attention except for the signs and row sums
/// (gradients are neither non-negative nor stochastic).
LoadedStack load_gradients(const std::string& path) {
  LoadedStack g;
  g.path = path;
  g.array = read_npy(path);
  g.view = AttentionView::of(g.array);
  for (double v : g.array.data)
    if (!std::isfinite(v)) throw InputError("'" + path + "' holds NaN or Inf");
  return g;
}

void run_grad_rollout(State& st) {
  check_output_path(st.output, "--output");
  apply_common(st, st.grad_rollout);
  const LoadedStack stack = load_stack(st.input, st.strict);
  const LoadedStack grad = load_gradients(st.grad_input);
  write_result(st.output, attention_gradient_rollout(stack.view, grad.view, st.grad_rollout), st.quiet);
}

void run_chefer(State& st) {
  check_output_path(st.output, "--output");
  apply_common(st, st.chefer);
  const LoadedStack stack = load_stack(st.input, st.strict);
  const LoadedStack grad = load_gradients(st.grad_input);
  write_result(st.output, attention_chefer(stack.view, grad.view, st.chefer), st.quiet);
}

/// Creates a method subcommand whose callback arms `action` with `run(state)`.
CLI::App* add_method(CLI::App* attention, Action& action, const std::string& name, const std::string& description,
                     const std::shared_ptr<State>& st, void (*run)(State&)) {
  CLI::App* sub = attention->add_subcommand(name, description);
  sub->callback([st, run, &action] { action = [st, run] { run(*st); }; });
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
      "post-softmax attention (rows = queries). INPUT is validated first (dtype, shape, NaN/Inf/"
      "negative values, row sums); bad input exits with code 2 and writes nothing");
  // At most one method; "no method" is reported below, so that a misspelt method is named in the error
  // ("not expected: saliency") instead of CLI11's generic "A subcommand is required".
  attention->require_subcommand(0, 1);
  attention->final_callback([attention] {
    if (attention->get_subcommands().empty()) {
      throw CLI::RequiredError(
          "attention: a method (raw, rollout, flow, flow-metzger, distance, heads, grad-rollout or chefer)");
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
    sub->add_option("--fusion", st->fusion, "Head fusion: mean (default), max or min, elementwise over heads")
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
    sub->add_option("--fusion", st->fusion, "Head fusion: mean (default), max or min")->check(CLI::IsMember(kFusions));
    sub->add_option("--discard-ratio", st->rollout.discard_ratio,
                    "Share in [0,1) of the N*N fused entries per layer, smallest first, set to 0 before the "
                    "residual is added (default 0 = none; vit-explain uses 0.9)");
    add_residual_option(sub, *st,
                        " (abnar mode only; vit-explain-reference always uses (F + I)/2, chefer (A + I) "
                        "row-normalised)");
    sub->add_option("--start-layer", st->rollout.start_layer,
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
        "--threshold", [st](double t) { st->heads.threshold = t; },
        "Also write 0/1 masks keeping, per head, the smallest set of largest patches holding at least this share "
        "of the head's mass, in (0,1] (default: no masks; DINO uses 0.6)");
    sub->add_option("--masks-output", st->masks_output,
                    "Masks file (default: OUT with '_masks' before the extension); needs --threshold")
        ->needs(threshold)
        ->type_name("PATH");
  }

  // grad-rollout, chefer ---------------------------------------------------------------------------------------
  const char* kGradientHelp =
      "Gradient of the explained class's logit with respect to every layer's attention, the shape of INPUT, e.g. "
      "from 'attnlens capture --grad-output' or attnlens.torch.capture (for --reference: the gradient with respect "
      "to the scaled pre-softmax scores)";
  {
    auto st = std::make_shared<State>();
    CLI::App* sub = add_method(
        attention, action, "grad-rollout",
        "Gradient attention rollout (jacobgil/vit-explain; spec 2): per layer mean_h(A * dA) clamped at 0, the "
        "smallest entries discarded, (F + I)/2 row-normalised, multiplied up the layers -> [N,N] (query, key), or "
        "one row with an explicit --query-row",
        st, run_grad_rollout);
    add_common_options(sub, *st, kQueryRowMatrix, true);
    sub->add_option("--grad", st->grad_input, kGradientHelp)->required()->type_name("GRAD.npy");
    sub->add_option("--discard-ratio", st->grad_rollout.discard_ratio,
                    "Share in [0,1) of the N*N entries per layer, smallest first, set to 0 (default 0.9, "
                    "vit-explain's)");
    sub->add_flag("--reference", st->grad_rollout.reference,
                  "vit-explain exactly: reversed layer pairing, nothing protected from the discard, its column-wise "
                  "normalisation quirk (pass score gradients as --grad for an exact reproduction)");
    add_scale_option(sub, *st);
  }
  {
    auto st = std::make_shared<State>();
    CLI::App* sub = add_method(
        attention, action, "chefer",
        "Chefer et al. 2021 relevance (spec 4.1): R = prod_l (I + mean_h max(0, dA * A)) from --start-layer -> "
        "[N,N] (query, key), or one row with an explicit --query-row",
        st, run_chefer);
    add_common_options(sub, *st, kQueryRowMatrix, true);
    sub->add_option("--grad", st->grad_input, kGradientHelp)->required()->type_name("GRAD.npy");
    sub->add_option("--start-layer", st->chefer.start_layer, "First layer (0-based) of the product (default 0)");
    add_scale_option(sub, *st);
  }

  // Set last: CLI11 copies a parent's footer into subcommands created after it.
  attention->footer(
      "Methods: raw (one layer's fused heads), rollout (Abnar & Zuidema 2020; vit-explain; Chefer baseline; spec "
      "section 1), flow (Abnar & Zuidema attention flow, exact max-flow; spec 3.1), flow-metzger (Metzger et al. "
      "2022 input-to-output flow; spec 3.2), distance (mean attention distance, Dosovitskiy et al. / probing-vits; "
      "spec 6), heads (DINO per-head maps and mass-threshold masks; spec 7), grad-rollout (vit-explain gradient "
      "rollout; spec 2) and chefer (Chefer et al. 2021 relevance; spec 4.1), which also read the attention's "
      "gradient.\n"
      "Run 'attnlens attention <method> --help' for each method's options.");
}

}  // namespace attnlens::cli
