#!/usr/bin/env bash
# The installed attnlens as another project sees it: `cmake --install` into a fresh prefix, the prefix moved
# elsewhere (the package must be relocatable), every public header compiled on its own, the three consumer projects
# of examples/cpp built with find_package(attnlens) against it and run, their outputs checked against the CLI's;
# the build tree's package is usable too, and the LibTorch-free consumer does not link LibTorch or OpenCV.
# Env: BUILD (the configured, built build tree), SOURCE (the source tree), PYTHON (Debian's python3 with numpy).
set -u
: "${BUILD:?set BUILD to the attnlens build folder}" "${SOURCE:?set SOURCE to the source folder}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ATTNLENS="$BUILD/attnlens"
source "$HERE/../cli/harness.sh"
jobs=$(nproc 2>/dev/null || echo 2)

cmake --install "$BUILD" --prefix "$T/staging" >"$T/install.log" 2>&1
check "cmake --install into a fresh prefix" test -f "$T/staging/lib/cmake/attnlens/attnlensConfig.cmake"
mv "$T/staging" "$T/prefix"  # relocated: nothing may point back at the staging path or the build tree
P="$T/prefix"
check "installed: the executable, its plugin, the version header" \
  test -x "$P/bin/attnlens" -a -f "$P/lib/attnlens/attnlens_model_commands.so" -a -f "$P/include/attnlens/version.hpp"
check "installed package names no build or staging path" \
  bash -c "! grep -rl -e '$BUILD' -e '$T/staging' '$P/lib/cmake/attnlens'"
check "installed headers: only the public ones (no CLI, no internal cli/ folder)" \
  bash -c "test ! -e '$P/include/attnlens/cli' && test -f '$P/include/attnlens/core/stack_methods.hpp'"
run_installed() { "$P/bin/attnlens" "$@" >"$T/stdout" 2>"$T/stderr"; }
check "installed attnlens --version" bash -c "'$P/bin/attnlens' --version | grep -q '^attnlens '"
check "installed attnlens runs a model command through its plugin" \
  "$P/bin/attnlens" predict "$SOURCE/data/models/fmnist-vit/samples/00_ankle-boot.png" \
  --model "$SOURCE/data/models/fmnist-vit" --json

# Every public header compiles on its own (it includes what it uses), and so does each layer's umbrella header. The
# headers that include LibTorch (directly or through another header) are compiled with <torch/torch.h> precompiled:
# each of them includes it anyway, so nothing is hidden, and parsing LibTorch once instead of 27 times saves about
# 400 CPU seconds of the test (17 s a header on these machines).
mkdir -p "$T/headers/src"
torch_headers=$("$PYTHON" - "$P/include" <<'PYEOF'
import os, re, sys
root = sys.argv[1]
headers = {}
for d, _, files in os.walk(os.path.join(root, "attnlens")):
    for f in files:
        if f.endswith(".hpp"):
            path = os.path.join(d, f)
            headers[path] = open(path).read()
memo = {}
def torch(path, stack=()):
    if path not in memo:
        text = headers[path]
        found = "#include <torch/" in text
        for m in re.finditer(r'#include "([^"]+)"', text):
            for base in (os.path.dirname(path), os.path.join(root, "attnlens")):  # relative, or umbrella style
                other = os.path.normpath(os.path.join(base, m.group(1)))
                if not found and other in headers and other not in stack:
                    found = torch(other, stack + (path,))
        memo[path] = found
    return memo[path]
print("\n".join(sorted(p for p in headers if torch(p))))
PYEOF
)
{
  echo 'cmake_minimum_required(VERSION 3.18)'
  echo 'project(attnlens_headers LANGUAGES CXX)'
  echo 'find_package(attnlens CONFIG REQUIRED)'
  plain=() with_torch=()
  n=0
  while IFS= read -r header; do
    rel=${header#"$P/include/"}
    n=$((n + 1))
    printf '#include <%s>\n' "$rel" >"$T/headers/src/h$n.cpp"
    if grep -qxF "$header" <<<"$torch_headers"; then with_torch+=("src/h$n.cpp"); else plain+=("src/h$n.cpp"); fi
  done < <(find "$P/include/attnlens" -name '*.hpp' | sort)
  echo "add_library(headers OBJECT ${plain[*]})"
  echo 'target_compile_options(headers PRIVATE -fsyntax-only -Wall -Wextra)'
  echo "add_library(headers_torch OBJECT ${with_torch[*]})"
  echo 'target_compile_options(headers_torch PRIVATE -Wall -Wextra)'
  echo 'target_precompile_headers(headers_torch PRIVATE <torch/torch.h>)'
  for t in headers headers_torch; do
    echo "target_link_libraries($t PRIVATE attnlens::core attnlens::io attnlens::image attnlens::viz attnlens::models attnlens::eval)"
  done
} >"$T/headers/CMakeLists.txt"
check "headers: the LibTorch ones found ($(grep -c . <<<"$torch_headers") of $(find "$P/include/attnlens" -name '*.hpp' | wc -l))" \
  test "$(grep -c . <<<"$torch_headers")" -ge 20
check "headers: configure against the installed package" \
  cmake -S "$T/headers" -B "$T/headers/build" -G Ninja -DCMAKE_PREFIX_PATH="$P"
check "every public header compiles alone ($(ls "$T/headers/src" | wc -l) headers)" \
  cmake --build "$T/headers/build" -j "$jobs"

# The consumer projects, built against the relocated prefix.
build_example() {  # NAME [extra cmake args]
  local name=$1
  shift
  cmake -S "$SOURCE/examples/cpp/$name" -B "$T/ex-$name" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$P" "$@" >"$T/ex-$name.log" 2>&1 && cmake --build "$T/ex-$name" -j "$jobs" >>"$T/ex-$name.log" 2>&1
}
check "example attention_stack builds (core and io only)" build_example attention_stack
check "example attention_stack links neither LibTorch nor OpenCV" \
  bash -c "! ldd '$T/ex-attention_stack/attention_stack' | grep -E 'libtorch|libc10|libopencv'"
mkdir -p "$T/o1"
check "example attention_stack runs" "$T/ex-attention_stack/attention_stack" "$T/o1"
run attention rollout "$T/o1/attention.npy" --query-row 0 -q -o "$T/o1/cli_rollout.npy"
run attention flow "$T/o1/attention.npy" -q -o "$T/o1/cli_flow.npy"
check "attention_stack: rollout and flow equal the CLI's, byte for byte" \
  bash -c "cmp '$T/o1/rollout.npy' '$T/o1/cli_rollout.npy' && cmp '$T/o1/flow.npy' '$T/o1/cli_flow.npy'"

check "example explain_vit builds (models and viz)" build_example explain_vit
mkdir -p "$T/o2"
IMG="$SOURCE/data/models/fmnist-vit/samples/03_trouser.png"
check "example explain_vit runs on the bundled model" \
  "$T/ex-explain_vit/explain_vit" "$SOURCE/data/models/fmnist-vit" "$IMG" "$T/o2"
run explain "$IMG" --model "$SOURCE/data/models/fmnist-vit" --method rollout,chefer -q -o "$T/o2/cli"
check "explain_vit: maps and overlays equal attnlens explain's, byte for byte" \
  bash -c "cmp '$T/o2/rollout.npy' '$T/o2/cli/000_03_trouser_rollout.npy' &&
           cmp '$T/o2/chefer.npy' '$T/o2/cli/000_03_trouser_chefer.npy' &&
           cmp '$T/o2/rollout.png' '$T/o2/cli/000_03_trouser_rollout.png' &&
           cmp '$T/o2/chefer.png' '$T/o2/cli/000_03_trouser_chefer.png'"

check "example own_model builds (a user's LibTorch module)" build_example own_model
mkdir -p "$T/o3"
check "example own_model runs" "$T/ex-own_model/own_model" "$T/o3"
run attention rollout "$T/o3/attention.npy" --query-row 0 --patches-only -q -o "$T/o3/cli_rollout.npy"
run attention grad-rollout "$T/o3/attention.npy" --grad "$T/o3/attention_grad.npy" --query-row 0 --patches-only -q \
  -o "$T/o3/cli_grad_rollout.npy"
run attention chefer "$T/o3/attention.npy" --grad "$T/o3/attention_grad.npy" --query-row 0 --patches-only -q \
  -o "$T/o3/cli_chefer.npy"
check "own_model: its rollout, grad-rollout and chefer maps equal the CLI's on its saved stacks (1e-12)" \
  "$PY" -c "
import numpy as np, sys
d = sys.argv[1]
for mine, cli in [('rollout', 'cli_rollout'), ('grad-rollout', 'cli_grad_rollout'), ('chefer', 'cli_chefer')]:
    a, b = np.load(f'{d}/{mine}.npy').ravel(), np.load(f'{d}/{cli}.npy')
    assert a.shape == b.shape == (16,), (mine, a.shape, b.shape)
    assert np.abs(a - b).max() <= 1e-12 * max(1.0, np.abs(b).max()), (mine, np.abs(a - b).max())
    assert np.ptp(a) > 0, mine  # a map that says something
" "$T/o3"

# The build tree is a package too (export()), for projects built beside attnlens without installing it.
check "example attention_stack builds against the build tree (attnlens_DIR=build)" \
  bash -c "cmake -S '$SOURCE/examples/cpp/attention_stack' -B '$T/ex-buildtree' -G Ninja -Dattnlens_DIR='$BUILD' \
           >/dev/null && cmake --build '$T/ex-buildtree' >/dev/null && '$T/ex-buildtree/attention_stack' '$T' >/dev/null"
check "a component this attnlens lacks is refused by find_package" \
  bash -c "mkdir -p '$T/bad' && printf 'cmake_minimum_required(VERSION 3.18)\nproject(b LANGUAGES CXX)\nfind_package(attnlens CONFIG REQUIRED COMPONENTS core quantum)\n' >'$T/bad/CMakeLists.txt' &&
           ! cmake -S '$T/bad' -B '$T/bad/build' -DCMAKE_PREFIX_PATH='$P' >'$T/bad.log' 2>&1 && grep -q quantum '$T/bad.log'"
finish
