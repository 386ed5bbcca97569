#!/usr/bin/env python3
"""Keeps attnlens' public headers in their installable form (run after adding a public header to CMakeLists.txt):

* project includes are relative to the header ("array.hpp", "../core/array.hpp"), so a header works unchanged from
  the source tree, the build tree and an installed prefix;
* the declarations sit between ATTNLENS_API_BEGIN and ATTNLENS_API_END (core/api.hpp), the exported API of a
  shared build.

Usage: tools/public_headers.py [--check] HEADER...   (--check: report headers not in that form, exit 1)
"""
import os
import re
import sys

LAYERS = ("core", "io", "models", "explain", "eval", "viz")


def rewrite(path, text):
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))

    def relative(match):
        layer, name = match.group(1), match.group(2)
        return '#include "%s"' % (name if layer == folder else "../%s/%s" % (layer, name))

    text = re.sub(r'#include "(%s)/([^"]+)"' % "|".join(LAYERS), relative, text)
    api = '"api.hpp"' if folder == "core" else '"../core/api.hpp"'
    if os.path.basename(path) != "api.hpp":
        if "#include %s" % api not in text:
            # First of the project includes (clang-format's order), else a block of its own after the system ones.
            project = re.search(r'^#include ".*$', text, re.M)
            if project:
                text = text[:project.start()] + "#include %s\n" % api + text[project.start():]
            else:
                includes = list(re.finditer(r"^#include .*$", text, re.M))
                at = includes[-1].end() if includes else text.index("#pragma once") + len("#pragma once")
                text = text[:at] + "\n\n#include %s" % api + text[at:]
        if "ATTNLENS_API_BEGIN" not in text:
            first = re.search(r"^namespace attnlens\b.*$", text, re.M)
            last = list(re.finditer(r"^}  // namespace attnlens\S*$", text, re.M))
            if not first or not last:
                raise SystemExit("%s: no namespace attnlens block to wrap" % path)
            end = last[-1].end()
            text = text[:end] + "\nATTNLENS_API_END" + text[end:]
            text = text[:first.start()] + "ATTNLENS_API_BEGIN\n" + text[first.start():]
    return text


def main(argv):
    check = "--check" in argv
    bad = []
    for path in [a for a in argv if a != "--check"]:
        with open(path) as f:
            text = f.read()
        new = rewrite(path, text)
        if new != text:
            if check:
                bad.append(path)
            else:
                with open(path, "w") as f:
                    f.write(new)
    if bad:
        print("not in public-header form (run tools/public_headers.py on them):", *bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
