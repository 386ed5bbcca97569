// AttAttr's attribution tree (Hao et al. 2021, spec section 5, YRdddream/attattr attribution_tree.py): which tokens
// pass information to which, layer by layer, read off per-layer attribution scores. Plain arrays, no LibTorch.
#pragma once

#include <vector>

#include "api.hpp"
#include "array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// A token's state while the tree grows (the reference's `fixed_list`).
enum class TreeStatus : int {
  absent = -1,  ///< not in the tree
  leaf = 0,     ///< in the tree, may still take one child of an absent token ("appear but not fixed")
  fixed = 1,    ///< internal node: has children
};

struct TreeNode {
  int token = 0;
  /// Plot height: (L-1)/L for the root, (L*h_parent - 1)/L below a leaf parent, the minimum height of all tokens
  /// (absent ones count as 0) below a fixed parent; the root's direct children keep 0 (reference quirk).
  double height = 0.0;
  TreeStatus status = TreeStatus::absent;
};

struct TreeEdge {
  int parent = 0;
  int child = 0;
  int layer = 0;       ///< 0-based layer whose P_l created the edge
  double value = 0.0;  ///< the thresholded, normalised P_l[parent][child]
};

struct AttributionTree {
  int root = 0;
  int layers = 0;
  std::vector<TreeNode> nodes;  ///< one per token, index = token (absent tokens included, status absent)
  std::vector<TreeEdge> edges;  ///< in the order the reference adds them
};

/// Builds the attribution tree from S = [L, N, N], S_l = sum over heads of layer l's attribution (rows = queries),
/// with threshold tau (reference 0.4). For L = 12 this is attribution_tree.py exactly: root children from layer
/// L-2 = 10, then layers L-3 = 9 down to 0; other depths replace 12 by L (heights) and 10/9 by L-2/L-3.
/// One deliberate difference: a layer whose normaliser |max(S_l[1:, :])| is 0 adds no edge (numpy gives NaN there).
/// Throws InputError unless S is [L, N, N] with L >= 2, N >= 2 and finite values, and tau is finite.
AttributionTree attribution_tree(const Array& layer_attribution, double threshold = 0.4);

}  // namespace attnlens
ATTNLENS_API_END
