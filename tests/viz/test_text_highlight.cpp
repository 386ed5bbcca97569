// Token highlighting (viz/text_highlight.hpp) and the attribution tree's DOT/SVG drawing (viz/tree_dot.hpp).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/array.hpp"
#include "core/attribution_tree.hpp"
#include "viz/text_highlight.hpp"
#include "viz/tree_dot.hpp"
#include "tests/support/strings.hpp"

namespace attnlens {
namespace {

namespace fs = std::filesystem;

using attnlens::test::count;

// Well-formedness through Python's XML parser (independent of our writer); skips without /usr/bin/python3.
class XmlCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("attnlens_text_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void expect_well_formed(const std::string& text, const std::string& name) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    if (std::system("/usr/bin/python3 -c 'import xml.dom.minidom' >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "no /usr/bin/python3 with xml.dom.minidom";
    const std::string cmd = "/usr/bin/python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' '" +
                            path + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "not well-formed XML: " << path << "\n" << text.substr(0, 2000);
  }

  fs::path dir_;
};
class TextHighlightXml : public XmlCheck {};
class TreeDotRender : public XmlCheck {};

const std::vector<std::string> kTokens = {"[CLS]", "un", "##believ", "##able", "film", "[SEP]"};

TEST(TextHighlight, ShadesJoinsAndTitles) {
  // Row max |score| = 2: "un" red at 1, "believ" blue at 0.5, "film" red at 0.25; zeros unshaded.
  const std::string h = highlight_tokens_html(kTokens, {{0, 2, -1, 0, 0.5, 0}}, {"attattr"});
  EXPECT_NE(h.find("<span title=\"0\">[CLS]</span> <span title=\"2\" style=\"background-color:rgba(214,39,40,1.000)\">"
                   "un</span><span title=\"-1\" style=\"background-color:rgba(31,119,180,0.500)\">believ</span>"
                   "<span title=\"0\">able</span> <span title=\"0.5\" "
                   "style=\"background-color:rgba(214,39,40,0.250)\">film</span> <span title=\"0\">[SEP]</span>"),
            std::string::npos)
      << h;
  EXPECT_NE(h.find(">attattr</span>"), std::string::npos);
  EXPECT_EQ(h.find("##"), std::string::npos);
  EXPECT_EQ(h.find("<script"), std::string::npos);
  EXPECT_EQ(h.rfind("<div", 0), 0u);
}

// Chefer's relevance and gradient rollout start from the identity, so [CLS]'s own score dwarfs every word: the scale
// spans the words, and [CLS]/[SEP] are drawn capped at full colour (the scores in the titles stay exact).
TEST(TextHighlight, SpecialTokensDoNotSetTheScale) {
  const std::string h = highlight_tokens_html(kTokens, {{1.0, 0.02, 0.01, 0, -0.005, 0.015}}, {"chefer"});
  EXPECT_NE(h.find("<span title=\"1\" style=\"background-color:rgba(214,39,40,1.000)\">[CLS]</span> "
                   "<span title=\"0.02\" style=\"background-color:rgba(214,39,40,1.000)\">un</span>"
                   "<span title=\"0.01\" style=\"background-color:rgba(214,39,40,0.500)\">believ</span>"
                   "<span title=\"0\">able</span> "
                   "<span title=\"-0.005\" style=\"background-color:rgba(31,119,180,0.250)\">film</span> "
                   "<span title=\"0.015\" style=\"background-color:rgba(214,39,40,0.750)\">[SEP]</span>"),
            std::string::npos)
      << h;
  // Only special tokens non-zero: they set the scale themselves rather than vanish.
  const std::string only = highlight_tokens_html(kTokens, {{0.5, 0, 0, 0, 0, 0}}, {"m"});
  EXPECT_NE(only.find("<span title=\"0.5\" style=\"background-color:rgba(214,39,40,1.000)\">[CLS]</span>"),
            std::string::npos)
      << only;
  // Empty unscaled_tokens: every token sets the scale, as before.
  HighlightOptions all;
  all.unscaled_tokens.clear();
  const std::string flat = highlight_tokens_html(kTokens, {{1.0, 0.02, 0, 0, 0, 0}}, {"m"}, all);
  EXPECT_NE(flat.find("<span title=\"0.02\" style=\"background-color:rgba(214,39,40,0.020)\">un</span>"),
            std::string::npos)
      << flat;
}

TEST(TextHighlight, RowsScaleIndependentlyAndZeroRowsStayWhite) {
  const std::string h =
      highlight_tokens_html({"a", "b"}, {{0.1, 0.05}, {0, 0}, {-4, 1}}, {"small", "zero", "mixed"});
  ASSERT_EQ(count(h, "<div style=\"margin"), 3u);
  const auto zero_row = h.substr(h.find(">zero<"), h.find(">mixed<") - h.find(">zero<"));
  EXPECT_EQ(zero_row.find("background"), std::string::npos) << zero_row;
  // Each row is scaled by its own max: 0.1 and -4 are both full strength.
  EXPECT_NE(h.find("title=\"0.1\" style=\"background-color:rgba(214,39,40,1.000)\""), std::string::npos);
  EXPECT_NE(h.find("title=\"0.05\" style=\"background-color:rgba(214,39,40,0.500)\""), std::string::npos);
  EXPECT_NE(h.find("title=\"-4\" style=\"background-color:rgba(31,119,180,1.000)\""), std::string::npos);
  EXPECT_NE(h.find("title=\"1\" style=\"background-color:rgba(214,39,40,0.250)\""), std::string::npos);
}

TEST(TextHighlight, ExactScoresInTitles) {
  const std::string h = highlight_tokens_html({"x", "y", "z"}, {{0.1 + 0.2, 1e-7, -0.0}}, {"m"});
  EXPECT_NE(h.find("title=\"0.30000000000000004\""), std::string::npos) << h;
  EXPECT_NE(h.find("title=\"1e-07\""), std::string::npos) << h;
}

TEST(TextHighlight, EscapesText) {
  const std::string h = highlight_tokens_html({"<b>&\"'", "url(", "a=b"}, {{1, 0, 0}}, {"m<1>"});
  EXPECT_NE(h.find(">&lt;b&gt;&amp;&quot;&#39;</span>"), std::string::npos) << h;
  EXPECT_NE(h.find(">url&#40;</span>"), std::string::npos) << h;
  EXPECT_NE(h.find(">a&#61;b</span>"), std::string::npos) << h;
  EXPECT_NE(h.find(">m&lt;1&gt;</span>"), std::string::npos) << h;
  EXPECT_EQ(h.find("<b>"), std::string::npos);
}

TEST(TextHighlight, WordPieceOptions) {
  HighlightOptions keep;
  keep.join_word_pieces = false;
  const std::string h = highlight_tokens_html(kTokens, {{0, 0, 0, 0, 0, 0}}, {"m"}, keep);
  EXPECT_NE(h.find("</span> <span title=\"0\">##believ</span> <span title=\"0\">##able</span>"), std::string::npos);
  // A leading piece has nothing to join and "##" alone is not a piece.
  const std::string g = highlight_tokens_html({"##x", "a", "##"}, {{0, 0, 0}}, {"m"});
  EXPECT_NE(g.find("> <span title=\"0\">##x</span> <span title=\"0\">a</span> <span title=\"0\">##</span>"),
            std::string::npos)
      << g;
}

TEST(TextHighlight, RejectsBadInput) {
  EXPECT_THROW(highlight_tokens_html({"a"}, {{1}}, {}), InputError);
  EXPECT_THROW(highlight_tokens_html({"a", "b"}, {{1}}, {"m"}), InputError);
  EXPECT_THROW(highlight_tokens_html({"a"}, {{std::nan("")}}, {"m"}), InputError);
  EXPECT_THROW(highlight_tokens_html({"a"}, {{INFINITY}}, {"m"}), InputError);
}

TEST_F(TextHighlightXml, SnippetAndPageAreWellFormed) {
  const std::vector<std::string> tokens = {"[CLS]", "caf\xC3\xA9", "<&>", "bad\xFF", "##s", "src=x", "[SEP]"};
  const std::vector<std::vector<double>> scores = {{0, 1, -1, 0.5, 0.25, 0, 0}, {0, 0, 0, 0, 0, 0, 0}};
  const std::string snippet = highlight_tokens_html(tokens, scores, {"a \"b\"", "href=x"});
  expect_well_formed(snippet, "snippet.xml");
  // The page goes through HtmlReport::fragment, which would refuse "src=" or "href=" if the text spelled them.
  const std::string page = highlight_tokens_page("Tokens & scores", tokens, scores, {"a \"b\"", "href=x"});
  EXPECT_NE(page.find(snippet), std::string::npos);
  EXPECT_NE(page.find("<title>Tokens &amp; scores</title>"), std::string::npos);
  expect_well_formed(page, "page.html");
}

// Root 1 with children 2 (layer 10) and 0; 2 -> 3 at layer 9; token 4 absent.
AttributionTree small_tree() {
  AttributionTree t;
  t.root = 1;
  t.layers = 12;
  t.nodes = {{0, 0.0, TreeStatus::leaf},
             {1, 11.0 / 12, TreeStatus::fixed},
             {2, 0.0, TreeStatus::fixed},
             {3, -1.0 / 12, TreeStatus::leaf},
             {4, 0.0, TreeStatus::absent}};
  t.edges = {{1, 0, 10, 0.5}, {1, 2, 10, 1.0}, {2, 3, 9, 0.7}};
  return t;
}

const std::vector<std::string> kTreeTokens = {"[CLS]", "say \"hi\"", "back\\slash", "&lt;", "gone"};

TEST(TreeDot, NodesRanksAndEdges) {
  const std::string dot = tree_to_dot(small_tree(), kTreeTokens);
  EXPECT_EQ(dot.rfind("digraph attribution_tree {", 0), 0u);
  EXPECT_NE(dot.find("t1 [label=\"say &quot;hi&quot;\", fillcolor="), std::string::npos) << dot;  // the root
  EXPECT_NE(dot.find("t2 [label=\"back\\\\slash\"]"), std::string::npos) << dot;
  EXPECT_NE(dot.find("t3 [label=\"&amp;lt;\"]"), std::string::npos) << dot;
  EXPECT_EQ(dot.find("t4"), std::string::npos);  // absent tokens are not drawn
  EXPECT_NE(dot.find("t1 -> t0 [label=\"L10\"]"), std::string::npos);
  EXPECT_NE(dot.find("t1 -> t2 [label=\"L10\"]"), std::string::npos);
  EXPECT_NE(dot.find("t2 -> t3 [label=\"L9\"]"), std::string::npos);
  // Three heights, highest first: {1}, {0, 2}, {3}, chained by invisible anchors.
  EXPECT_NE(dot.find("{ rank=same; height0; t1; }"), std::string::npos) << dot;
  EXPECT_NE(dot.find("{ rank=same; height1; t0; t2; }"), std::string::npos) << dot;
  EXPECT_NE(dot.find("{ rank=same; height2; t3; }"), std::string::npos) << dot;
  EXPECT_NE(dot.find("height0 -> height1 -> height2 [style=invis];"), std::string::npos) << dot;
  EXPECT_THROW(tree_to_dot(small_tree(), {"a"}), InputError);
}

bool have_dot() { return std::system("command -v dot >/dev/null 2>&1") == 0; }

TEST_F(TreeDotRender, RendersSvgWithGraphviz) {
  if (!have_dot()) GTEST_SKIP() << "Graphviz dot not installed";
  const std::string svg = render_dot_svg(tree_to_dot(small_tree(), kTreeTokens));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  // Graphviz decodes the entities of the label, so the texts come out as typed (re-escaped for XML).
  EXPECT_NE(svg.find(">say &quot;hi&quot;</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">back\\slash</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">&amp;lt;</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">L9</text>"), std::string::npos);
  expect_well_formed(svg, "tree.svg");
}

TEST(TreeDot, RenderReportsDotErrors) {
  if (!have_dot()) GTEST_SKIP() << "Graphviz dot not installed";
  try {
    render_dot_svg("digraph { a -> ");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("Graphviz 'dot' failed"), std::string::npos) << e.what();
  }
}

TEST(TreeDot, RenderWithoutDotOnPath) {
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  const fs::path empty = fs::temp_directory_path() / ("attnlens_nodot_" + std::to_string(::getpid()));
  fs::create_directories(empty);
  ::setenv("PATH", empty.c_str(), 1);
  std::string message;
  try {
    render_dot_svg("digraph { a }");
  } catch (const InputError& e) {
    message = e.what();
  }
  ::setenv("PATH", saved.c_str(), 1);
  fs::remove_all(empty);
  EXPECT_EQ(message, "Graphviz 'dot' not found; install graphviz");
}

}  // namespace
}  // namespace attnlens
