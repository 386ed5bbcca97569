// Token scores of text models shown on the text itself: one line per method, each token shaded by its score.
#pragma once

#include <string>
#include <vector>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct HighlightOptions {
  /// WordPiece continuations ("##ing") are drawn without the "##" and without a gap after the previous token.
  bool join_word_pieces = true;
  /// Tokens drawn but left out of each row's colour scale, as the references display text relevance: the explained
  /// [CLS] token's own relevance (the identity Chefer's rule and gradient rollout start from) would otherwise set
  /// the scale and leave every word white. Such a token is shaded at min(1, |score| / the row's largest |score|
  /// over the other tokens). A row whose other tokens are all zero scales over every token. Empty: all set it.
  std::vector<std::string> unscaled_tokens{"[CLS]", "[SEP]", "[PAD]"};
};

/// A self-contained HTML fragment (one <div>, inline styles only, no scripts; also well-formed XML): one row per
/// method, its name first, then every token as a <span> with title = the exact score (shortest round-trip decimal)
/// and a background of red (score > 0) or blue (score < 0) at opacity |score| / max|score| of that row, the maximum
/// taken over the tokens that are not options.unscaled_tokens (opacity capped at 1); zero scores, and so an
/// all-zero row, stay white. Text is XML-escaped, '=' and '(' as character references too. Throws
/// InputError when the numbers of methods and names differ, a row's length differs from tokens.size(), or a score
/// is not finite.
std::string highlight_tokens_html(const std::vector<std::string>& tokens,
                                  const std::vector<std::vector<double>>& scores_per_method,
                                  const std::vector<std::string>& method_names, const HighlightOptions& options = {});

/// A whole self-contained page (viz/html.hpp's HtmlReport, titled `title`) holding highlight_tokens_html.
std::string highlight_tokens_page(const std::string& title, const std::vector<std::string>& tokens,
                                  const std::vector<std::vector<double>>& scores_per_method,
                                  const std::vector<std::string>& method_names, const HighlightOptions& options = {});

}  // namespace attnlens
ATTNLENS_API_END
