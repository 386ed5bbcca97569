// One self-contained HTML report page: inline CSS, images as data URIs, inline SVG, no scripts and nothing fetched
// from the network (a Content-Security-Policy in the page enforces it), so the file can be mailed or archived alone.
// The markup is also well-formed XML, which the tests check with an XML parser.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// One table cell: text (left-aligned) or a number (right-aligned; integers exactly, others to 6 significant digits).
struct TableCell {
  std::string text;
  bool numeric = false;

  TableCell(std::string s) : text(std::move(s)) {}  // NOLINT: implicit so rows read {"name", 0.5, 3}
  TableCell(const char* s) : text(s) {}              // NOLINT
  template <typename T, std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>, int> = 0>
  TableCell(T v) : numeric(true) {  // NOLINT
    if constexpr (std::is_integral_v<T>)
      text = std::to_string(v);
    else
      text = format_real(static_cast<double>(v));
  }

  /// 6 significant digits, locale-independent ("0.123457", "1.5e-07", "NaN", "inf").
  static std::string format_real(double v);
};

/// An image for HtmlReport::images: a "data:image/..." URI (see png_data_uri) and a caption.
struct HtmlFigure {
  std::string data_uri;
  std::string caption;
  int width = 0;  ///< display width in CSS pixels; 0 = natural size (pixelated upscaling is never applied)
};

/// Builder. Every text argument is plain text and is escaped; only svg() takes markup.
class HtmlReport {
 public:
  explicit HtmlReport(std::string title);

  /// Starts a new <section> with an <h2> heading (closing the previous one).
  HtmlReport& section(const std::string& heading);
  HtmlReport& subheading(const std::string& text);
  HtmlReport& paragraph(const std::string& text);
  /// Monospaced block keeping line breaks (e.g. the command line that produced the report).
  HtmlReport& preformatted(const std::string& text);
  /// One figure. Throws std::invalid_argument unless the URI is a data:image/ URI (nothing may be fetched).
  HtmlReport& image(const std::string& data_uri, const std::string& caption = "", int width = 0);
  /// Figures side by side, wrapping on narrow screens.
  HtmlReport& images(const std::vector<HtmlFigure>& figures);
  /// An inline <svg> element as viz/svg.hpp produces it, inserted as is. Throws std::invalid_argument when the
  /// string does not start with "<svg" or contains a <script or <foreignObject element.
  HtmlReport& svg(const std::string& svg_markup, const std::string& caption = "");
  /// A fragment of markup made by attnlens' own viz functions (e.g. viz/text_highlight.hpp), inserted as is.
  /// Throws std::invalid_argument when it holds anything that could run code or fetch a resource.
  HtmlReport& fragment(const std::string& markup);
  /// A table; each row must have as many cells as the header. Throws std::invalid_argument otherwise.
  HtmlReport& table(const std::vector<std::string>& header, const std::vector<std::vector<TableCell>>& rows,
                    const std::string& caption = "");

  /// The whole document.
  std::string html() const;
  /// html() written atomically (io/atomic_file.hpp); throws InputError when it cannot.
  void write(const std::string& path) const;

 private:
  std::string title_;
  std::string body_;
  bool in_section_ = false;
};

/// Escapes text for HTML content and attribute values (the same rules as xml_escape in viz/svg.hpp).
std::string html_escape(const std::string& text);

}  // namespace attnlens
ATTNLENS_API_END
