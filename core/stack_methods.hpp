// The attention-graph methods on a whole attention stack, exactly as `attnlens attention <method>` and the Python
// module (`attnlens.rollout`, `attnlens.attention_flow`, ...) expose them: one settings struct and one function per
// method, with the option checks, the choice of output row and the final shaping (--patches-only, --scale) in one
// place, so that every front end gives the same numbers and the same error messages.
//
// Text-shaped stacks (N - prefix not a square) work wherever no patch grid is needed: only attention_distance and
// attention_head_maps lay the tokens out on a grid.
#pragma once

#include <optional>
#include <string>

#include "api.hpp"
#include "array.hpp"
#include "attention_flow.hpp"
#include "fusion.hpp"
#include "gradient_methods.hpp"
#include "rollout.hpp"
#include "validate.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Per-row rescaling of a result's last dimension (after the prefix columns were dropped).
enum class Scale {
  None,
  Max,     ///< x / max (vit-explain's final step)
  MinMax,  ///< (x - min) / (max - min) (Chefer et al.)
  Sum      ///< x / sum
};
/// "none", "max", "minmax", "sum"; InputError naming `option` for anything else.
Scale parse_scale(const std::string& name, const std::string& option = "--scale");
/// Rescales every row (last dimension) of `a` in place; a row whose denominator is 0 or not finite stays unchanged.
void scale_rows(Array& a, Scale scale);
/// Row `row` of every trailing [N,N] matrix: [..., N, N] -> [..., N].
Array select_row(const Array& a, int row);
/// Drops the first `prefix` entries of the last dimension.
Array drop_prefix_columns(const Array& a, int prefix);

/// A result and the names of its dimensions ("layer", "query", "key", ...), as CSV index columns and JSON dims.
struct LabeledArray {
  Array array;
  DimNames dims;
};

/// What every stack method shares: the token layout and how the result is shaped.
struct StackSettings {
  int prefix_tokens = 1;  ///< tokens before the patches (CLS; CLS + distillation; CLS + registers); in [0, N)
  /// Patch grid for the methods that need one; 0x0 = a square grid of side sqrt(N - prefix_tokens).
  int grid_h = 0, grid_w = 0;
  /// The explained (query) token. Matrix methods (raw, rollout, gradient methods, flow with scope all) keep only
  /// this row when it is set; flow (scope cls), flow-metzger and head maps read it with a default of 0.
  std::optional<int> query_row;
  bool patches_only = false;  ///< drop the first prefix_tokens columns of the key dimension
  Scale scale = Scale::None;
};

/// Checks `attention` (NaN/Inf, negative values: InputError) and its row sums: far from 1 (kRowSumTolerance) is an
/// InputError when `strict`, else the returned warning (empty when the rows are fine). `source` names the input in
/// messages.
std::string check_attention_stack(const AttentionView& attention, bool rank4, bool strict, const std::string& source);

/// The layout of a stack of `tokens` tokens under `settings`: the grid resolved (InputError when the patches do not
/// form it).
TokenLayout stack_layout(int tokens, const StackSettings& settings);

struct RawSettings : StackSettings {
  HeadFusion fusion = HeadFusion::Mean;
  int layer = -1;           ///< negative counts from the end
  bool all_layers = false;  ///< every layer: [L,N,N]
};
/// One layer's fused attention: [N,N] (query, key), [L,N,N] with all_layers, [N] / [L,N] with a query row.
LabeledArray raw_attention(const AttentionView& attention, const RawSettings& settings);

struct RolloutSettings : StackSettings {
  RolloutMode mode = RolloutMode::Abnar;
  HeadFusion fusion = HeadFusion::Mean;
  double discard_ratio = 0.0;  ///< in [0, 1)
  Residual residual = Residual::Half;
  int start_layer = 0;      ///< first layer of the product, in [0, L)
  bool all_layers = false;  ///< the joint attention after every layer from start_layer: [L-s,N,N]
};
/// Attention rollout (spec 1): [N,N], [L-s,N,N] with all_layers, one row with a query row.
LabeledArray attention_rollout(const AttentionView& attention, const RolloutSettings& settings);

struct FlowSettings : StackSettings {
  Residual residual = Residual::Half;
  bool scope_all = false;  ///< false: from (last layer, query_row or 0) -> [N]; true: from every node -> [L,N,N]
  bool normalize = false;  ///< divide each row by its sum over all N inputs (the reference's compute_flows)
  int threads = 1;         ///< scope all: 0 = every core
};
/// Exact attention flow (spec 3.1). `progress` (scope all) may be empty; `cancel` may be null: set from another
/// thread it stops scope all within one source and throws Cancelled.
LabeledArray attention_flow(const AttentionView& attention, const FlowSettings& settings,
                            const ProgressFn& progress = {}, const CancelFlag* cancel = nullptr);

struct MetzgerSettings : StackSettings {
  Residual residual = Residual::Half;
  MetzgerForm form = MetzgerForm::PerToken;
};
/// Input-to-output flow after Metzger et al. (spec 3.2) to node (last layer, query_row or 0): [N] (key).
LabeledArray attention_flow_metzger(const AttentionView& attention, const MetzgerSettings& settings);

struct DistanceSettings : StackSettings {
  double patch_size = 0.0;  ///< pixels per patch side, > 0
  bool renormalize = false;
};
/// Mean attention distance per layer and head in input pixels (spec 6): [L,H] (layer, head).
LabeledArray attention_distance(const AttentionView& attention, const DistanceSettings& settings);

struct HeadMapsSettings : StackSettings {
  int layer = -1;
  std::optional<double> threshold;  ///< DINO's mass threshold in (0, 1]: masks as well
};
struct HeadMaps {
  LabeledArray maps;   ///< [H,gh,gw] (head, row, col)
  LabeledArray masks;  ///< the same shape, 0/1; empty without a threshold
};
/// Per-head maps of the query row (default 0) at one layer, on the patch grid (spec 7).
HeadMaps attention_head_maps(const AttentionView& attention, const HeadMapsSettings& settings);

struct GradientRolloutSettings : StackSettings {
  double discard_ratio = 0.9;  ///< vit-explain's default
  /// vit-explain's quirks (spec 2): reversed layer pairing, no discard protection, column normalisation. For an
  /// exact reproduction pass the score gradients as `gradient`.
  bool reference = false;
};
/// Gradient attention rollout (spec 2) from attention and d(target logit)/dA, both [L,H,N,N] (or [L,N,N]): the
/// final [N,N] product, one row with a query row.
LabeledArray attention_gradient_rollout(const AttentionView& attention, const AttentionView& gradient,
                                        const GradientRolloutSettings& settings);

struct CheferSettings : StackSettings {
  int start_layer = 0;
};
/// Chefer et al. 2021 relevance R = prod (I + mean_h max(0, G ⊙ A)) from start_layer (spec 4.1): [N,N], one row with
/// a query row.
LabeledArray attention_chefer(const AttentionView& attention, const AttentionView& gradient,
                              const CheferSettings& settings);

struct GradSamSettings : StackSettings {
  GradSamAxis axis = GradSamAxis::Columns;
};
/// Grad-SAM (Barkan et al. 2021, spec 20): the mean of A ⊙ max(0, G) over layers, heads and query rows, one score
/// per key token, [N] (axis Rows: over keys, one per query token). query_row is not read: every row counts.
LabeledArray attention_grad_sam(const AttentionView& attention, const AttentionView& gradient,
                                const GradSamSettings& settings);

/// "--query-row r is out of range" unless 0 <= row < tokens.
void check_query_row(int row, int tokens, const std::string& option = "--query-row");
/// Python-style index (-1 = last) into [0, layers); InputError naming `option` outside [-layers, layers).
int resolve_layer(int layer, int layers, const std::string& option);

}  // namespace attnlens
ATTNLENS_API_END
