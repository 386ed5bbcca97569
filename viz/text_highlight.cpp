#include "viz/text_highlight.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include "core/array.hpp"
#include "viz/html.hpp"
#include "viz/svg.hpp"

namespace attnlens {

namespace {

// matplotlib's tab10 red and blue, as the SVG plots use, so a method looks the same in every picture of a report.
const char* const kPositive = "214,39,40";
const char* const kNegative = "31,119,180";

// Shortest decimal that reads back as the same double: the title shows the exact score.
std::string exact(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// Opacity with 3 decimals, independent of the C locale (a decimal comma would break the CSS).
std::string opacity(double a) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, a, std::chars_format::fixed, 3);
  return std::string(buf, r.ptr);
}

bool is_word_piece(const std::string& token) { return token.size() > 2 && token.compare(0, 2, "##") == 0; }

// Text content: xml_escape, and '=' and '(' as character references too, so no token or method name can spell
// "href=", "src=" or "url(", which HtmlReport::fragment refuses (the page must fetch nothing).
std::string text(const std::string& raw) {
  std::string out;
  for (char c : xml_escape(raw)) {
    if (c == '=') out += "&#61;";
    else if (c == '(') out += "&#40;";
    else out += c;
  }
  return out;
}

}  // namespace

std::string highlight_tokens_html(const std::vector<std::string>& tokens,
                                  const std::vector<std::vector<double>>& scores_per_method,
                                  const std::vector<std::string>& method_names, const HighlightOptions& options) {
  if (scores_per_method.size() != method_names.size())
    throw InputError("token highlighting: " + std::to_string(scores_per_method.size()) + " score rows but " +
                     std::to_string(method_names.size()) + " method names");
  for (std::size_t m = 0; m < scores_per_method.size(); ++m) {
    const auto& row = scores_per_method[m];
    if (row.size() != tokens.size())
      throw InputError("token highlighting: method '" + method_names[m] + "' has " + std::to_string(row.size()) +
                       " scores for " + std::to_string(tokens.size()) + " tokens");
    for (std::size_t t = 0; t < row.size(); ++t)
      if (!std::isfinite(row[t]))
        throw InputError("token highlighting: method '" + method_names[m] + "' has a non-finite score at token " +
                         std::to_string(t));
  }

  std::string s =
      "<div style=\"font-family:system-ui,sans-serif;line-height:1.9;background-color:#ffffff;color:#222222;"
      "padding:0.4em 0.6em\">\n";
  for (std::size_t m = 0; m < scores_per_method.size(); ++m) {
    const auto& row = scores_per_method[m];
    // The scale spans the tokens the method explains; special tokens only set it when nothing else is non-zero.
    double peak = 0.0, peak_all = 0.0;
    for (std::size_t t = 0; t < row.size(); ++t) {
      peak_all = std::max(peak_all, std::fabs(row[t]));
      if (std::find(options.unscaled_tokens.begin(), options.unscaled_tokens.end(), tokens[t]) ==
          options.unscaled_tokens.end())
        peak = std::max(peak, std::fabs(row[t]));
    }
    if (peak == 0.0) peak = peak_all;
    s += "<div style=\"margin:0.2em 0\"><span style=\"display:inline-block;min-width:9em;font-weight:bold;"
         "color:#555555\">" +
         text(method_names[m]) + "</span>";
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      const bool joined = options.join_word_pieces && t > 0 && is_word_piece(tokens[t]);
      // The gap between words is plain text outside the spans, so a word's pieces read as one shaded word.
      if (!joined) s += ' ';
      s += "<span title=\"" + exact(row[t]) + "\"";
      if (peak > 0.0 && row[t] != 0.0)
        s += std::string(" style=\"background-color:rgba(") + (row[t] > 0 ? kPositive : kNegative) + "," +
             opacity(std::min(1.0, std::fabs(row[t]) / peak)) + ")\"";
      s += ">" + text(joined ? tokens[t].substr(2) : tokens[t]) + "</span>";
    }
    s += "</div>\n";
  }
  return s + "</div>\n";
}

std::string highlight_tokens_page(const std::string& title, const std::vector<std::string>& tokens,
                                  const std::vector<std::vector<double>>& scores_per_method,
                                  const std::vector<std::string>& method_names, const HighlightOptions& options) {
  HtmlReport report(title);
  report.fragment(highlight_tokens_html(tokens, scores_per_method, method_names, options));
  return report.html();
}

}  // namespace attnlens
