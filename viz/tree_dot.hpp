// The attribution tree (core/attribution_tree.hpp) as a Graphviz graph, and Graphviz's `dot` run to draw it.
#pragma once

#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../core/attribution_tree.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// DOT text of `tree`: one box per token in the tree (absent tokens left out, the root always drawn) labelled with
/// its text from `tokens`, nodes of equal height on one rank, higher heights above, edges parent -> child labelled
/// "L<layer>" (0-based). Throws InputError when tokens.size() differs from the tree's token count.
std::string tree_to_dot(const AttributionTree& tree, const std::vector<std::string>& tokens);

/// Runs `dot -Tsvg` on `dot_source` (no shell: the text goes through a private temporary file and dot is started
/// with an argument vector) and returns the <svg> element, without the XML prolog, so it fits HtmlReport::svg.
/// Throws InputError "Graphviz 'dot' not found; install graphviz" when dot is not on PATH, and InputError with
/// dot's message when it fails.
std::string render_dot_svg(const std::string& dot_source);

}  // namespace attnlens
ATTNLENS_API_END
