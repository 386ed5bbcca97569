// One interface for every explanation method, like captum's attributions: a method turns what a model recorded for
// one image (attention, and gradients when it needs them) into relevance over the patch grid.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"
#include "../core/fusion.hpp"
#include "../core/rollout.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// What one forward (and backward) pass recorded for one image, as plain arrays.
struct AttentionRecord {
  Array attention;       ///< [L,H,N,N] post-softmax; may be empty when every method uses head_mean
  /// [L,N,N] head mean of `attention`, filled by callers when a method reports uses_head_mean(); 1/H of the data
  Array head_mean;
  Array attention_grad;  ///< [L,H,N,N] d(target logit)/dA; empty unless a method needs gradients
  Array scores_grad;     ///< [L,H,N,N] d(target logit)/d(scaled pre-softmax scores); same
  TokenLayout layout;
};

/// Settings shared by the methods; each reads the ones it has.
/// MethodSettings::query_row value for the column-wise maximum over all query rows (raw, rollout and flow only):
/// what Abnar & Zuidema's SST script correlates (spec 1.1, 3.1).
constexpr int kColumnMax = -1;

struct MethodSettings {
  int query_row = 0;             ///< explained token (0 = CLS; 1 = distillation token); kColumnMax: max over rows
  HeadFusion fusion = HeadFusion::Mean;
  double discard_ratio = 0.0;    ///< rollout; grad-rollout uses grad_discard_ratio
  double grad_discard_ratio = 0.9;
  RolloutMode rollout_mode = RolloutMode::Abnar;
  bool reference = false;        ///< grad-rollout: vit-explain's quirks (reversed layers, score gradients, ...)
  Residual residual = Residual::Half;
  int start_layer = 0;           ///< rollout, chefer and chefer-lrp: first 0-based block of the product
  int layer = -1;                ///< raw and heads: layer (negative from the end)
  std::string grad_sam_axis = "columns";  ///< grad-sam: columns (a score per key token) or rows (per query token)

  // The methods that run the model again (explain/model_method.hpp).
  int steps = 20;                ///< bi-attn, bi-attn-token: points of the integrated-gradient path (0 and 1 included)
  /// bi-attn, bi-attn-token: first 0-based block aggregated; -1 = the authors' choice scaled to the depth: L/4 for
  /// bi-attn (block 3 of 12), 5L/12 for bi-attn-token (block 5 of 12)
  int bi_start_layer = -1;
  double gamma_conv = 0.25;      ///< attnlrp, cp-lrp: Gamma on the patch embedding (toolkit choice; 0 = none)
  double gamma_linear = 0.05;    ///< attnlrp, cp-lrp: Gamma on the feed-forward linears and the head (0 = none)
  bool gamma_attention_projections = false;  ///< attnlrp, cp-lrp: Gamma also on qkv and the output projection
  /// attnlrp, cp-lrp: the ε-rule's ε on the linear layers without Gamma (spec 14.10.1; 0 = LXT's z-rule)
  double lrp_epsilon = 0.0;
  double atman_factor = 0.1;     ///< atman: the suppressed key column's multiplier m
  /// atman: cosine similarity from which other tokens are suppressed with the explained one (the reference's 0.6);
  /// NaN = the token alone
  double atman_threshold = 0.6;
  int batch = 16;                ///< atman, bi-attn: model inputs per pass of the methods that run many copies
  /// chefer-lrp: transformer_attribution (the paper's method), rollout (of the LRP attention relevance),
  /// last_layer (the last block's) or full (pixel-level LRP summed over each patch)
  std::string chefer_lrp_variant = "transformer_attribution";
  /// chefer-lrp on text (transformer_attribution): first 0-based layer of the row-normalised product; -1 = the last
  /// layer, as the BERT reference's start_layer = 11 of 12
  int text_start_layer = -1;
};

class ExplanationMethod {
 public:
  virtual ~ExplanationMethod() = default;
  virtual std::string name() const = 0;
  virtual bool needs_gradients() const { return false; }
  /// True when the method reads only the head mean of the attention (AttentionRecord::head_mean) when present.
  virtual bool uses_head_mean() const { return false; }
  /// Relevance of each patch, [grid_h, grid_w] ([H, grid_h, grid_w] for per-head methods), not rescaled.
  virtual Array explain(const AttentionRecord& record) const = 0;
};

/// raw, rollout, grad-rollout, flow, flow-metzger, chefer, grad-sam, heads. Throws InputError for an unknown name.
std::unique_ptr<ExplanationMethod> make_method(const std::string& name, const MethodSettings& settings);
const std::vector<std::string>& method_names();

// The factories behind make_method, one per file in explain/.
std::unique_ptr<ExplanationMethod> make_raw(const MethodSettings&);
std::unique_ptr<ExplanationMethod> make_rollout(const MethodSettings&);
std::unique_ptr<ExplanationMethod> make_grad_rollout(const MethodSettings&);
std::unique_ptr<ExplanationMethod> make_flow(const MethodSettings&);
std::unique_ptr<ExplanationMethod> make_flow_metzger(const MethodSettings&);
std::unique_ptr<ExplanationMethod> make_chefer(const MethodSettings&);
std::unique_ptr<ExplanationMethod> make_grad_sam(const MethodSettings&);
std::unique_ptr<ExplanationMethod> make_heads(const MethodSettings&);

/// The patch part of row `row` of an [N,N] matrix, laid out as [grid_h, grid_w].
Array patch_map(const Array& matrix, int row, const TokenLayout& layout);
/// Column-wise maximum over the rows of an [N,N] matrix, [N].
Array column_max(const Array& matrix);
/// InputError unless the method supports settings.query_row (kColumnMax only for raw, rollout and flow).
void check_query_row_supported(const std::string& method, int query_row);

/// The same for an [N] vector.
Array patch_map_of_vector(const Array& vector, const TokenLayout& layout);

}  // namespace attnlens
ATTNLENS_API_END
