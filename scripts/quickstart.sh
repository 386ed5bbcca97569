#!/usr/bin/env bash
# attnlens quick start for Debian 12: installs what is missing (apt-get, needs root), builds in Release, then
#   demo  runs the main job on the bundled example and says where its outputs are
#   test  runs every test: the Release build's suite, then core/ and io/ again under AddressSanitizer + UBSan, then
#         every libFuzzer harness briefly on its seeds and committed regressions (tests/fuzz/run.sh short)
#   fuzz  runs every libFuzzer harness for FUZZ_SECONDS (default 600) each: tests/fuzz/run.sh long
#   bench runs the benchmarks (ratios against baselines measured in the same run)
set -euo pipefail

job=${1:-demo}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

# Build tools and libraries, plus what the tests use to cross-check (numpy, networkx, PyTorch/torchvision) and to
# open the HTML reports in headless Chromium (driven over the DevTools protocol with python3-websocket).
# OpenBLAS: Debian's LibTorch calls the system BLAS, and the default reference BLAS is many times slower.
packages=(cmake g++ ninja-build libcli11-dev nlohmann-json3-dev liblemon-dev libgtest-dev libbenchmark-dev
          libtorch-dev libopencv-dev libopenblas0-openmp libutf8proc-dev zlib1g-dev graphviz
          python3 python3-numpy python3-scipy python3-networkx python3-torch python3-torchvision dataset-fashion-mnist
          python3-regex python3-html5lib
          python3-dev pybind11-dev python3-pybind11 python3-venv python3-pip python3-setuptools python3-wheel python3-pytest
          chromium python3-websocket clang libclang-rt-14-dev time libopenmpi-dev openmpi-bin)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # npm fetches the text data; any npm will do (Node.js from elsewhere conflicts with Debian's npm package).
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "attnlens: these Debian packages are missing: ${missing[*]}" >&2
    echo "attnlens: run this script as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "== installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {  # build DIR [cmake options...]
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

# The Python module (python/, setup.py): pip-installed offline into .venv, which also sees Debian's numpy and torch.
python_package() {
  [ -x "$root/.venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$root/.venv"
  "$root/.venv/bin/pip" install --quiet --no-build-isolation --no-index "$root"
}

install_missing
# The review sentences of the bundled text model (npm package sentiment@5.0.2; not committed, checked by sha256).
bash "$root/tools/fetch_sentiment.sh"
case "$job" in
  demo)
    build "$root/build" -DCMAKE_BUILD_TYPE=Release
    # The bundled Fashion-MNIST ViT: every method on its 16 sample canvases, one HTML page to look at.
    "$root/build/attnlens" explain "$root/data/models/fmnist-vit/samples" --model "$root/data/models/fmnist-vit" \
      --method all --threshold 0.6 -o "$root/out/demo/explain"
    # The attention-graph methods on a saved attention stack (no model needed).
    "$root/build/attnlens" demo -o "$root/out/demo/attention"
    # The bundled sentiment BERT: every text method on a few held-out sentences, and an attribution tree.
    "$root/build/attnlens" explain --model "$root/data/models/sentiment-bert" --method all \
      --texts "$root/data/models/sentiment-bert/demo_texts.txt" -o "$root/out/demo/text"
    "$root/build/attnlens" tree --model "$root/data/models/sentiment-bert" \
      "The food was not good at all, and the service was slow." -o "$root/out/demo/tree"
    # How faithful are the methods? A short evaluation and a masked FGSM attack on 32 canvases of the canvas set.
    "$root/build/attnlens" evaluate --model "$root/data/models/fmnist-vit" --data canvas --limit 32 \
      -o "$root/out/demo/evaluate"
    "$root/build/attnlens" attack fgsm --model "$root/data/models/fmnist-vit" --data canvas --limit 32 \
      -o "$root/out/demo/fgsm"
    # The Python module: the attention-graph methods on a NumPy array in five lines (examples/python/quickstart.py).
    python_package
    "$root/.venv/bin/python" "$root/examples/python/quickstart.py"
    echo "== open $root/out/demo/explain/index.html, $root/out/demo/text/index.html, $root/out/demo/tree/tree.svg,"
    echo "   $root/out/demo/evaluate/report.html and $root/out/demo/fgsm/report.html"
    ;;
  test)
    build "$root/build" -DCMAKE_BUILD_TYPE=Release
    # transformers.js, the reference of the byte-level BPE test (npm, pinned by its package-lock.json); offline, the
    # test says so and is skipped.
    bash "$root/tools/fetch_tokenizers_js.sh" || echo "== transformers.js not installed: bpe_vs_transformers_js skips"
    echo "== tests (Release)"
    ctest --test-dir "$root/build" --output-on-failure -j "$jobs"
    echo "== Python module (tests/python; the CLI comparisons use build/attnlens)"
    python_package
    "$root/.venv/bin/python" -m pytest -q -p no:cacheprovider "$root/tests/python"
    # One sanitized build (clang) serves both: the fuzz harnesses and core_io_tests, under ASan + UBSan.
    CC=clang CXX=clang++ build "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTNLENS_FUZZ=ON
    echo "== core/ and io/ tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    ctest --test-dir "$root/build-fuzz" --output-on-failure -j "$jobs"
    echo "== libFuzzer harnesses: committed regressions and a short run each (tests/fuzz)"
    bash "$root/tests/fuzz/run.sh" short
    ;;
  fuzz)
    CC=clang CXX=clang++ build "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTNLENS_FUZZ=ON
    FUZZ_BUILD="$root/build-fuzz" bash "$root/tests/fuzz/run.sh" long "${FUZZ_SECONDS:-600}"
    ;;
  bench)
    build "$root/build" -DCMAKE_BUILD_TYPE=Release
    "$root/build/bench_flow"
    "$root/build/bench_text"
    /usr/bin/python3 "$root/bench/run_model_bench.py" "$root/build"
    python_package
    "$root/.venv/bin/python" "$root/bench/bench_python.py"
    ;;
  *)
    echo "usage: $0 demo|test|bench|fuzz" >&2
    exit 2
    ;;
esac
