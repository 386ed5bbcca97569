#!/usr/bin/env bash
# Install transformers.js (npm @huggingface/transformers, the version pinned by tests/cross/tokenizers_js/
# package-lock.json), the reference the byte-level BPE conformance test compares attnlens' tokenizers with:
#
#     bash tools/fetch_tokenizers_js.sh        # into tests/cross/tokenizers_js/node_modules (git-ignored)
#
# `npm ci` installs exactly the lock file's packages, each checked against its integrity hash; --ignore-scripts
# skips onnxruntime-node's install script, which would download GPU binaries (the test needs the tokenizers only).
# Exit codes: 0 installed (or already there), 3 npm missing or the registry unreachable (the test then skips),
# 1 anything else. Needs npm and the npm registry (or an npm cache holding the packages).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo/tests/cross/tokenizers_js"
want="$(sed -n 's/.*"@huggingface\/transformers": "\([^"]*\)".*/\1/p' "$dir/package.json" | head -1)"
installed="$dir/node_modules/@huggingface/transformers/package.json"

if [[ -f "$installed" ]] && grep -q "\"version\": \"$want\"" "$installed"; then
  echo "fetch_tokenizers_js: @huggingface/transformers@$want already in $dir/node_modules"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch_tokenizers_js: npm not found (Debian: apt-get install npm)" >&2; exit 3; }
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Few retries and a short timeout: offline, npm would otherwise retry for minutes before failing.
if ! (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --fetch-retries=1 \
        --fetch-timeout=30000 >"$log" 2>&1); then
  tail -n 5 "$log" >&2 || true
  if grep -qiE "ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|network|ENETUNREACH" "$log"; then
    echo "fetch_tokenizers_js: the npm registry is unreachable" >&2
    exit 3
  fi
  echo "fetch_tokenizers_js: npm ci failed" >&2
  exit 1
fi
echo "fetch_tokenizers_js: installed @huggingface/transformers@$want into $dir/node_modules"
