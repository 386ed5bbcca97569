#!/usr/bin/env bash
# Fetch the text data set of attnlens' bundled BERT model: 3 x 1,000 labelled review sentences (Amazon, IMDb, Yelp;
# Kotzias et al. 2015, "From Group to Individual Labels using Deep Features"), as shipped in the npm package
# sentiment@5.0.2 under test/fixtures/{amazon,imdb,yelp}.json (a JSON list of {"text": ..., "class": 0|1}).
#
#     bash tools/fetch_sentiment.sh [DEST]        # default DEST: <repo>/data/sentiment (git-ignored)
#
# The files are not committed (they are another project's test fixtures), so every machine fetches them. npm checks
# the registry's integrity hash of the tarball; this script then checks each extracted file against the sha256
# recorded below, so a changed or republished package is a clear error and never a silently different data set.
# Nothing is left behind on failure; the files appear in DEST by rename (atomic per file) only once all three
# verified. Needs npm and access to the npm registry (or an npm cache holding the package).
set -euo pipefail

PACKAGE="sentiment@5.0.2"
FILES=(amazon.json imdb.json yelp.json)
declare -A SHA256=(
  [amazon.json]=bc5eb0cac49fc45987301f1dc2d02cf5ca356ba6c882be179dce77d74e666ed9
  [imdb.json]=44a7b9082ed732ee2de3c858ea5ee2e99aca34f239a1c4359d3a300bf099bdb5
  [yelp.json]=9f3f47983f21eeb819380767b74bfa648eca208f156241111454b3e122773ff7
)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo/data/sentiment}"

die() { echo "fetch_sentiment: $*" >&2; exit 1; }

verify() {  # verify DIR: all three files there with the recorded sha256
  local dir="$1" f actual
  for f in "${FILES[@]}"; do
    [[ -f "$dir/$f" ]] || return 1
    actual="$(sha256sum "$dir/$f" | cut -d' ' -f1)"
    [[ "$actual" == "${SHA256[$f]}" ]] || die "$dir/$f: sha256 $actual, expected ${SHA256[$f]} (a changed file or package; delete it and fetch again)"
  done
}

present=0
for f in "${FILES[@]}"; do [[ -f "$dest/$f" ]] && present=$((present + 1)); done
if (( present == ${#FILES[@]} )); then
  verify "$dest"
  echo "fetch_sentiment: $dest already has ${FILES[*]}"
  exit 0
fi

command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
command -v tar >/dev/null || die "tar not found"
command -v npm >/dev/null || die "npm not found: install it (Debian: apt-get install npm) or copy ${FILES[*]} from $PACKAGE's test/fixtures/ into $dest"

created_dest=0
[[ -d "$dest" ]] || created_dest=1
mkdir -p "$dest"
# The staging folder lives inside DEST so the final mv is a rename on one file system (atomic per file).
stage="$(mktemp -d "$dest/.fetch.XXXXXX")"
cleanup() { rm -rf "$stage"; if (( created_dest )); then rmdir "$dest" 2>/dev/null || true; fi; }
trap cleanup EXIT

# Few retries and a short timeout: offline, npm would otherwise retry for minutes before failing.
if ! (cd "$stage" && npm pack "$PACKAGE" --loglevel=error --fetch-retries=1 --fetch-timeout=30000 >"$stage/npm.log" 2>&1); then
  tail -n 5 "$stage/npm.log" >&2 || true
  die "npm pack $PACKAGE failed (offline, or the registry unreachable?)"
fi
tarball="$stage/sentiment-5.0.2.tgz"
[[ -f "$tarball" ]] || die "npm pack did not produce $tarball"

members=()
for f in "${FILES[@]}"; do members+=("package/test/fixtures/$f"); done
tar -xzf "$tarball" -C "$stage" "${members[@]}" || die "$tarball lacks test/fixtures/{${FILES[*]}}"
for f in "${FILES[@]}"; do mv "$stage/package/test/fixtures/$f" "$stage/$f"; done
verify "$stage" || die "extraction incomplete"

for f in "${FILES[@]}"; do mv -f "$stage/$f" "$dest/$f"; done
echo "fetch_sentiment: wrote ${FILES[*]} to $dest (from $PACKAGE, sha256 verified)"
