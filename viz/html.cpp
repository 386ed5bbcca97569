#include "viz/html.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/atomic_file.hpp"
#include "viz/svg.hpp"

namespace attnlens {

namespace {

// Kept short and plain: the page must read well printed and in any browser without external fonts.
const char* const kStyle = R"css(
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #eee; padding-bottom: .2em; }
h3 { font-size: 1.1em; margin-top: 1.2em; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; font-size: .9em; }
figure { margin: 1em 0; display: inline-block; vertical-align: top; }
figure img, figure svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: .9em; color: #555; margin-top: .3em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.figures figure { margin: 0; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
caption { caption-side: top; text-align: left; color: #555; padding-bottom: .3em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { margin-top: 3em; font-size: .8em; color: #888; }
)css";

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

void check_data_uri(const std::string& uri) {
  if (!starts_with(uri, "data:image/"))
    throw std::invalid_argument("HTML report images must be data:image/ URIs (nothing may be fetched)");
}

std::string figure_markup(const std::string& uri, const std::string& caption, int width) {
  check_data_uri(uri);
  std::string s = "<figure><img src=\"" + html_escape(uri) + "\" alt=\"" + html_escape(caption) + "\"";
  if (width > 0) s += " width=\"" + std::to_string(width) + "\"";
  s += " />";
  if (!caption.empty()) s += "<figcaption>" + html_escape(caption) + "</figcaption>";
  return s + "</figure>\n";
}

}  // namespace

std::string html_escape(const std::string& text) { return xml_escape(text); }

std::string TableCell::format_real(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
  return std::string(buf, r.ptr);
}

HtmlReport::HtmlReport(std::string title) : title_(std::move(title)) {}

HtmlReport& HtmlReport::section(const std::string& heading) {
  if (in_section_) body_ += "</section>\n";
  body_ += "<section>\n<h2>" + html_escape(heading) + "</h2>\n";
  in_section_ = true;
  return *this;
}

HtmlReport& HtmlReport::subheading(const std::string& text) {
  body_ += "<h3>" + html_escape(text) + "</h3>\n";
  return *this;
}

HtmlReport& HtmlReport::paragraph(const std::string& text) {
  body_ += "<p>" + html_escape(text) + "</p>\n";
  return *this;
}

HtmlReport& HtmlReport::preformatted(const std::string& text) {
  body_ += "<pre>" + html_escape(text) + "</pre>\n";
  return *this;
}

HtmlReport& HtmlReport::image(const std::string& data_uri, const std::string& caption, int width) {
  body_ += figure_markup(data_uri, caption, width);
  return *this;
}

HtmlReport& HtmlReport::images(const std::vector<HtmlFigure>& figures) {
  std::string s = "<div class=\"figures\">\n";
  for (const HtmlFigure& f : figures) s += figure_markup(f.data_uri, f.caption, f.width);
  body_ += s + "</div>\n";
  return *this;
}

HtmlReport& HtmlReport::svg(const std::string& svg_markup, const std::string& caption) {
  const auto start = svg_markup.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || svg_markup.compare(start, 4, "<svg") != 0)
    throw std::invalid_argument("HtmlReport::svg expects an <svg> element");
  const std::string l = lower(svg_markup);
  // Only drawings: anything that could run code or load a resource would break the page's self-containment.
  for (const char* banned : {"<script", "<foreignobject", "href=", "<image", "url("})
    if (l.find(banned) != std::string::npos)
      throw std::invalid_argument(std::string("HtmlReport::svg: inline SVG must not contain ") + banned);
  body_ += "<figure>" + svg_markup.substr(start);
  if (!caption.empty()) body_ += "<figcaption>" + html_escape(caption) + "</figcaption>";
  body_ += "</figure>\n";
  return *this;
}

HtmlReport& HtmlReport::fragment(const std::string& markup) {
  const std::string l = lower(markup);
  for (const char* banned : {"<script", "<iframe", "<object", "<embed", "<link", "<img", "href=", "src=", "url("})
    if (l.find(banned) != std::string::npos)
      throw std::invalid_argument(std::string("HtmlReport::fragment must not contain ") + banned);
  body_ += markup + "\n";
  return *this;
}

HtmlReport& HtmlReport::table(const std::vector<std::string>& header, const std::vector<std::vector<TableCell>>& rows,
                              const std::string& caption) {
  for (std::size_t r = 0; r < rows.size(); ++r)
    if (!header.empty() && rows[r].size() != header.size())
      throw std::invalid_argument("HtmlReport::table: row " + std::to_string(r) + " has " +
                                  std::to_string(rows[r].size()) + " cells for " + std::to_string(header.size()) +
                                  " columns");
  std::string s = "<table>\n";
  if (!caption.empty()) s += "<caption>" + html_escape(caption) + "</caption>\n";
  if (!header.empty()) {
    s += "<thead><tr>";
    for (const std::string& h : header) s += "<th>" + html_escape(h) + "</th>";
    s += "</tr></thead>\n";
  }
  s += "<tbody>\n";
  for (const auto& row : rows) {
    s += "<tr>";
    for (const TableCell& c : row) s += (c.numeric ? "<td class=\"num\">" : "<td>") + html_escape(c.text) + "</td>";
    s += "</tr>\n";
  }
  body_ += s + "</tbody>\n</table>\n";
  return *this;
}

std::string HtmlReport::html() const {
  std::string s;
  s += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n";
  s += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n";
  // Enforces the no-network promise; the data: favicon stops browsers from asking for /favicon.ico.
  s += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;; img-src data:; "
       "style-src &#39;unsafe-inline&#39;\" />\n";
  s += "<link rel=\"icon\" href=\"data:,\" />\n";
  s += "<title>" + html_escape(title_) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  s += "<h1>" + html_escape(title_) + "</h1>\n";
  s += body_;
  if (in_section_) s += "</section>\n";
  s += "<footer>Generated by attnlens.</footer>\n</body>\n</html>\n";
  return s;
}

void HtmlReport::write(const std::string& path) const { write_file_atomic(path, html()); }

}  // namespace attnlens
