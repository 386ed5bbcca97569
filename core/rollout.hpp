// Attention rollout (Abnar & Zuidema 2020) and the reference variants of spec section 1.
#pragma once

#include "api.hpp"
#include "array.hpp"
#include "fusion.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

enum class RolloutMode {
  /// Correct default: fuse heads, optional discard (never zeroes prefix rows/columns), add I, true row
  /// normalisation, J_l = A_l * J_{l-1}.
  Abnar,
  /// jacobgil/vit-explain exactly (spec 1.2): discard protects only flat index 0, a = (F + I)/2, then every
  /// column j divided by the sum of row j (the published normalisation quirk).
  VitExplainReference,
  /// Chefer et al. baseline rollout (spec 1.3): head mean, + I, row normalisation. Numerically equal to Abnar with
  /// mean fusion; rejects other fusions and any discard so that the name always means the published computation.
  Chefer,
};

struct RolloutOptions {
  RolloutMode mode = RolloutMode::Abnar;
  HeadFusion fusion = HeadFusion::Mean;
  double discard_ratio = 0.0;  ///< share of the N*N fused entries (smallest first) set to 0 per layer, in [0, 1)
  Residual residual = Residual::Half;
  int start_layer = 0;         ///< first layer in the product (0-based)
  int prefix_tokens = 1;       ///< rows/columns the Abnar mode protects from discarding
};

/// Joint attention after each layer from start_layer on: [L - start_layer, N, N]; the last matrix is the rollout.
/// Throws InputError for invalid options.
Array rollout(const AttentionView& attention, const RolloutOptions& options);

/// Row `row` of the final joint attention only, [N]: what an explanation needs. The same per-layer matrices, but
/// propagated as v <- v M_l from the deepest layer: O(L N^2) instead of the O(L N^3) matrix chain. Equals the last
/// matrix of rollout() at that row, up to floating-point summation order.
Array rollout_row(const AttentionView& attention, const RolloutOptions& options, int row);

/// Which entries a discard never zeroes (they still count among the k smallest, so the ratio keeps meaning "share
/// of all N*N entries").
enum class DiscardProtection {
  None,              ///< vit-explain's gradient rollout
  FirstEntry,        ///< flat index 0 only: vit-explain's rollout
  PrefixRowsColumns  ///< rows and columns below `prefix`: attnlens' corrected modes
};

/// Zeroes the k = floor(N*N*ratio) smallest entries of an N x N matrix, ties by lower flat index (the selection
/// smallest_entries lists), except the protected ones. O(N^2): a threshold from nth_element, no sorting.
void discard_smallest(double* matrix, int n, double ratio, DiscardProtection protection, int prefix = 0);

/// Indices (flat, into an N*N matrix) of the k = floor(N*N*ratio) smallest values, ties broken by lower index
/// (torch.topk leaves tie order unspecified; this choice is documented in the README).
std::vector<std::int64_t> smallest_entries(const double* matrix, int n, double ratio);

}  // namespace attnlens
ATTNLENS_API_END
