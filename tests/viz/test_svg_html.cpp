#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "viz/html.hpp"
#include "viz/overlay.hpp"
#include "viz/svg.hpp"
#include "tests/support/strings.hpp"

namespace attnlens {
namespace {

namespace fs = std::filesystem;

bool have_python() { return std::system("/usr/bin/python3 -c 'import xml.dom.minidom' >/dev/null 2>&1") == 0; }

using attnlens::test::count;

class XmlFilesBase : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("attnlens_svg_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Parses `text` with Python's XML parser (an independent well-formedness check). Skips when python is absent.
  void expect_well_formed(const std::string& text, const std::string& name) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    if (!have_python()) GTEST_SKIP() << "no /usr/bin/python3 with xml.dom.minidom";
    const std::string cmd = "/usr/bin/python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' '" +
                            path + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "not well-formed XML: " << path << "\n" << text.substr(0, 2000);
  }

  // Parses `html` with html5lib in strict mode (the HTML5 parsing algorithm browsers use; any parse error fails).
  // Skips when html5lib is not installed.
  void expect_html5_clean(const std::string& html, const std::string& name) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << html;
    if (std::system("/usr/bin/python3 -c 'import html5lib' >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "no html5lib for /usr/bin/python3";
    const std::string cmd =
        "/usr/bin/python3 -c 'import sys, html5lib; "
        "html5lib.HTMLParser(strict=True).parse(open(sys.argv[1], \"rb\"))' '" + path + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "HTML5 parse errors in " << path;
  }

  fs::path dir_;
};
class SvgFiles : public XmlFilesBase {};
class HtmlFiles : public XmlFilesBase {};

// Mean attention distance as in the ViT paper's figure: x = layer, y = pixels, one dot per head.
Plot distance_plot(const std::string& title) {
  PlotOptions o;
  o.title = title;
  o.x_label = "layer";
  o.y_label = "mean attention distance (px)";
  o.x_integer_ticks = true;
  Plot plot(o);
  for (int h = 0; h < 3; ++h) {
    std::vector<double> x, y;
    for (int l = 1; l <= 12; ++l) {
      x.push_back(l);
      y.push_back(20.0 + 8.0 * l + 15.0 * h * std::sin(l));
    }
    plot.scatter("head " + std::to_string(h), x, y);
  }
  return plot;
}

TEST(SvgEscape, EscapesMarkupAndRepairsText) {
  EXPECT_EQ(xml_escape("a<b & \"c\" 'd' >"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39; &gt;");
  EXPECT_EQ(xml_escape("caf\xC3\xA9 \xE4\xB8\xAD"), "caf\xC3\xA9 \xE4\xB8\xAD");  // valid UTF-8 kept
  EXPECT_EQ(xml_escape(std::string("a\x01" "b\x00" "c", 5)), "abc");           // XML-forbidden controls dropped
  EXPECT_EQ(xml_escape("tab\tnl\n"), "tab\tnl\n");
  EXPECT_EQ(xml_escape("x\xFFy"), "x\xEF\xBF\xBDy");              // stray byte -> U+FFFD
  EXPECT_EQ(xml_escape("\xC3"), "\xEF\xBF\xBD");                   // truncated sequence
  EXPECT_EQ(xml_escape("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate, byte by byte
}

TEST_F(SvgFiles, SvgScatterIsWellFormedAndEscaped) {
  Plot plot = distance_plot("Attention distance <ViT-B/16> & friends");
  plot.scatter("<script>", {1.0}, {5.0});
  const std::string svg = plot.svg();
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("Attention distance &lt;ViT-B/16&gt; &amp; friends"), std::string::npos);
  EXPECT_EQ(svg.find("<ViT"), std::string::npos);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
  EXPECT_NE(svg.find("&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(count(svg, "<circle"), 3u * 12u + 1u + 4u);  // the dots, then one legend marker per series
  EXPECT_NE(svg.find(">head 2</text>"), std::string::npos);
  EXPECT_NE(svg.find(">mean attention distance (px)</text>"), std::string::npos);
  EXPECT_EQ(svg.find("http", 40), std::string::npos);  // nothing linked besides the namespace name
  expect_well_formed(svg, "scatter.svg");
}

TEST(SvgPlot, DeterministicOutput) {
  EXPECT_EQ(distance_plot("t").svg(), distance_plot("t").svg());
}

TEST(SvgPlot, IntegerTicksOnTheLayerAxis) {
  const std::string svg = distance_plot("").svg();
  EXPECT_NE(svg.find(">12</text>"), std::string::npos);
  EXPECT_EQ(svg.find(">2.5</text>"), std::string::npos);
  EXPECT_EQ(svg.find(">1.5</text>"), std::string::npos);
}

TEST_F(SvgFiles, LinePlotBreaksAtMissingValues) {
  PlotOptions o;
  o.title = "deletion curve";
  o.x_label = "fraction removed";
  o.y_label = "probability";
  o.y_min = 0.0;
  o.y_max = 1.0;
  Plot plot(o);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  plot.line("rollout", {0, 0.1, 0.2, 0.3, 0.4}, {0.9, 0.7, nan, 0.3, 0.2});
  plot.line("random", {0, 0.2, 0.4}, {0.9, 0.8, 0.7}, "#000000", true);
  const std::string svg = plot.svg();
  EXPECT_EQ(count(svg, "<polyline"), 3u);
  EXPECT_NE(svg.find("stroke=\"#000000\""), std::string::npos);
  EXPECT_NE(svg.find(">0.4</text>"), std::string::npos);  // y ticks of [0,1]
  EXPECT_NE(svg.find(">1.0</text>"), std::string::npos);
  expect_well_formed(svg, "lines.svg");
}

TEST_F(SvgFiles, HistogramCountsAndBarChart) {
  PlotOptions o;
  o.title = "row sums";
  // numpy.histogram([0, 0.1, 0.5, 1.0, 1.0], 2) -> counts [2, 3] (the last bin is closed).
  const std::string hist = svg_histogram({0.0, 0.1, 0.5, 1.0, 1.0, std::nan("")}, 2, o);
  // Bars are the rects that start with x= (the background rect starts with width=).
  std::vector<double> heights;
  for (auto p = hist.find("<rect x="); p != std::string::npos; p = hist.find("<rect x=", p + 1)) {
    const auto h = hist.find("height=\"", p) + 8;
    heights.push_back(std::stod(hist.substr(h, hist.find('"', h) - h)));
  }
  ASSERT_EQ(heights.size(), 2u);
  EXPECT_NEAR(heights[1] / heights[0], 1.5, 0.01);
  expect_well_formed(hist, "hist.svg");

  const std::string bars =
      svg_bar_chart({"raw", "rollout", "flow & co"}, {{"AUC <del>", {0.1, 0.2, 0.3}}, {"AUC ins", {0.5, 0.4, 0.6}}}, o);
  EXPECT_NE(bars.find(">flow &amp; co</text>"), std::string::npos);
  EXPECT_NE(bars.find(">AUC &lt;del&gt;</text>"), std::string::npos);
  expect_well_formed(bars, "bars.svg");

  EXPECT_THROW(svg_bar_chart({"a", "b"}, {{"s", {1.0}}}, o), InputError);
  EXPECT_THROW(svg_histogram({1.0}, 0, o), InputError);
}

TEST(SvgPlot, RejectsBadInput) {
  Plot plot;
  EXPECT_THROW(plot.scatter("s", {1, 2}, {1}), InputError);
  PlotOptions tiny;
  tiny.width = 10;
  EXPECT_THROW(Plot(tiny).svg(), InputError);
  PlotOptions inverted;
  inverted.y_min = 1;
  inverted.y_max = 0;
  EXPECT_THROW(Plot(inverted).svg(), InputError);
  // No data at all still draws axes.
  EXPECT_NE(Plot().svg().find("</svg>"), std::string::npos);
}

HtmlReport sample_report() {
  HtmlReport r("Report <1> & co");
  r.section("Overlays");
  r.paragraph("<script>alert(1)</script> & more");
  cv::Mat img(4, 4, CV_8UC3, cv::Scalar(10, 200, 30));
  r.image(png_data_uri(img), "rollout \"cls\"", 224);
  r.images({{png_data_uri(img), "a", 0}, {png_data_uri(img), "b < c", 0}});
  r.section("Numbers");
  r.table({"method", "AUC", "heads"}, {{"a<b", 0.5, 3}, {std::string("flow"), 1.0 / 3.0, 12LL}}, "scores & more");
  r.svg(distance_plot("distance").svg(), "mean attention distance");
  r.preformatted("attnlens attention rollout att.npy -o <out>");
  return r;
}

TEST_F(HtmlFiles, HtmlIsSelfContainedEscapedAndWellFormed) {
  const std::string html = sample_report().html();
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<img src=\"data:image/png;base64,iVBORw0KGgo"), std::string::npos);
  EXPECT_NE(html.find("<title>Report &lt;1&gt; &amp; co</title>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("alt=\"rollout &quot;cls&quot;\" width=\"224\""), std::string::npos);
  EXPECT_NE(html.find("<td>a&lt;b</td><td class=\"num\">0.5</td><td class=\"num\">3</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">0.333333</td><td class=\"num\">12</td>"), std::string::npos);
  EXPECT_NE(html.find("<caption>scores &amp; more</caption>"), std::string::npos);
  EXPECT_NE(html.find("<svg xmlns"), std::string::npos);
  EXPECT_EQ(count(html, "<section>"), 2u);
  EXPECT_EQ(count(html, "</section>"), 2u);
  // Nothing to fetch: the only URLs are data: URIs and the SVG namespace name.
  EXPECT_EQ(count(html, "http://"), count(html, "http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_NE(html.find("Content-Security-Policy"), std::string::npos);
  expect_well_formed(html, "report.html");
  expect_html5_clean(html, "report5.html");
}

TEST_F(HtmlFiles, HtmlWriteIsAtomicAndComplete) {
  const HtmlReport r = sample_report();
  const std::string path = (dir_ / "out" / "report.html").string();
  r.write(path);
  std::ifstream in(path, std::ios::binary);
  const std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(back, r.html());
}

TEST(HtmlReportErrors, RejectsExternalImagesAndBadMarkup) {
  HtmlReport r("x");
  EXPECT_THROW(r.image("https://example.com/a.png"), std::invalid_argument);
  EXPECT_THROW(r.image("a.png"), std::invalid_argument);
  EXPECT_THROW(r.svg("<div></div>"), std::invalid_argument);
  EXPECT_THROW(r.svg("<svg><script>alert(1)</script></svg>"), std::invalid_argument);
  EXPECT_THROW(r.svg("<svg><image href=\"http://x\"/></svg>"), std::invalid_argument);
  EXPECT_THROW(r.table({"a", "b"}, {{"1"}}), std::invalid_argument);
}

TEST(HtmlTableCell, FormatsNumbers) {
  EXPECT_EQ(TableCell(3).text, "3");
  EXPECT_EQ(TableCell(-7LL).text, "-7");
  EXPECT_EQ(TableCell(0.1234567).text, "0.123457");
  EXPECT_EQ(TableCell(1.5e-7).text, "1.5e-07");
  EXPECT_EQ(TableCell(std::nan("")).text, "NaN");
  EXPECT_TRUE(TableCell(2.0f).numeric);
  EXPECT_FALSE(TableCell("2").numeric);
}

}  // namespace
}  // namespace attnlens
