#include "viz/tree_dot.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "viz/svg.hpp"

extern char** environ;

namespace attnlens {

namespace {

namespace fs = std::filesystem;

// A DOT double-quoted string body. xml_escape first: it guarantees valid UTF-8 without control characters, and the
// entities it writes (&amp; &lt; &quot; ...) are decoded by Graphviz in plain labels, so a token such as "&lt;" is
// shown as typed rather than as "<". Then DOT's own escapes: backslash starts \n, \l, \N ... and must be doubled.
std::string dot_string(const std::string& text) {
  std::string out;
  for (char c : xml_escape(text)) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += ' ';
    else if (c != '\r') out += c;
  }
  return out;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A private directory (mkdtemp: mode 0700, unpredictable name) removed on every exit path.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "attnlens_dot_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw InputError(std::string("cannot create a temporary directory for Graphviz: ") + std::strerror(errno));
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// posix_spawn file actions released on every exit path.
struct FileActions {
  posix_spawn_file_actions_t fa;
  FileActions() { posix_spawn_file_actions_init(&fa); }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
};

}  // namespace

std::string tree_to_dot(const AttributionTree& tree, const std::vector<std::string>& tokens) {
  const int N = static_cast<int>(tree.nodes.size());
  if (tokens.size() != tree.nodes.size())
    throw InputError("attribution tree has " + std::to_string(N) + " tokens but " + std::to_string(tokens.size()) +
                     " token texts were given");
  std::vector<int> shown;
  for (int t = 0; t < N; ++t)
    if (tree.nodes[t].status != TreeStatus::absent || t == tree.root) shown.push_back(t);
  std::vector<double> heights;
  for (int t : shown) heights.push_back(tree.nodes[t].height);
  std::sort(heights.begin(), heights.end(), std::greater<double>());
  heights.erase(std::unique(heights.begin(), heights.end()), heights.end());

  std::string s = "digraph attribution_tree {\n";
  s += "  graph [rankdir=TB, nodesep=0.25, ranksep=0.45];\n";
  s += "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f3f3f3\", color=\"#888888\", fontname=\"Helvetica\", "
       "fontsize=12];\n";
  s += "  edge [color=\"#1f77b4\", fontname=\"Helvetica\", fontsize=10, fontcolor=\"#555555\"];\n";
  for (int t : shown) {
    s += "  t" + std::to_string(t) + " [label=\"" + dot_string(tokens[t]) + "\"";
    if (t == tree.root) s += ", fillcolor=\"#ffd8b1\", penwidth=2";
    s += "];\n";
  }
  // Ranks follow the reference's heights: one invisible anchor per distinct height, chained from the highest down,
  // pins the order of the rank=same groups even where no edge connects them.
  for (std::size_t r = 0; r < heights.size(); ++r) {
    const std::string anchor = "height" + std::to_string(r);
    s += "  " + anchor + " [shape=point, style=invis, width=0, height=0, label=\"\"];\n";
    s += "  { rank=same; " + anchor + ";";
    for (int t : shown)
      if (tree.nodes[t].height == heights[r]) s += " t" + std::to_string(t) + ";";
    s += " }\n";
  }
  if (heights.size() > 1) {
    s += " ";
    for (std::size_t r = 0; r < heights.size(); ++r) s += (r ? " -> height" : " height") + std::to_string(r);
    s += " [style=invis];\n";
  }
  for (const TreeEdge& e : tree.edges)
    s += "  t" + std::to_string(e.parent) + " -> t" + std::to_string(e.child) + " [label=\"L" +
         std::to_string(e.layer) + "\"];\n";
  return s + "}\n";
}

std::string render_dot_svg(const std::string& dot_source) {
  TempDir dir;
  const fs::path input = dir.path / "graph.dot", output = dir.path / "graph.svg", errors = dir.path / "errors.txt";
  {
    std::ofstream out(input, std::ios::binary);
    out << dot_source;
    if (!out.flush()) throw InputError("cannot write the temporary Graphviz input " + input.string());
  }

  FileActions actions;
  posix_spawn_file_actions_addopen(&actions.fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions.fa, STDERR_FILENO, errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::string a0 = "dot", a1 = "-Tsvg", a2 = "-o", a3 = output.string(), a4 = input.string();
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), a4.data(), nullptr};
  pid_t pid = 0;
  // posix_spawnp searches PATH itself and glibc reports a failed exec as its return value: no shell is involved.
  const int rc = ::posix_spawnp(&pid, "dot", &actions.fa, nullptr, argv, environ);
  if (rc == ENOENT) throw InputError("Graphviz 'dot' not found; install graphviz");
  if (rc != 0) throw InputError(std::string("cannot run Graphviz 'dot': ") + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw InputError(std::string("waiting for Graphviz 'dot' failed: ") + std::strerror(errno));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string message = read_all(errors);
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.pop_back();
    if (message.size() > 500) message = message.substr(0, 500) + "...";
    throw InputError("Graphviz 'dot' failed" + (message.empty() ? std::string() : ": " + message));
  }
  std::string svg = read_all(output);
  const auto start = svg.find("<svg");
  if (start == std::string::npos) throw InputError("Graphviz 'dot' wrote no <svg> element");
  return svg.substr(start);
}

}  // namespace attnlens
