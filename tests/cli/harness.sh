# Shared by the tests/cli/*.sh scripts (sourced): the binary, a temporary folder removed on exit, pass/fail
# counting, and two ways to run checks.
#   run ARGS...          runs attnlens; stdout/stderr in $T/stdout, $T/stderr, exit code in $RC
#   check NAME CMD...    passes when CMD exits 0; prints the tail of its output otherwise
#   finish               prints "N passed, M failed" and returns non-zero when any failed
# Env: ATTNLENS (the binary, required), PYTHON (default /usr/bin/python3: Debian's, with NumPy and PyTorch).
: "${ATTNLENS:?set ATTNLENS to the attnlens executable}"
ATTNLENS=$(cd "$(dirname "$ATTNLENS")" && pwd)/$(basename "$ATTNLENS")
PY=${PYTHON:-/usr/bin/python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok     $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAILED $1"
  if [ $# -gt 1 ]; then printf '%s\n' "$2" | sed 's/^/       | /' | head -n 30; fi
}

# Both work with and without `set -e` in the calling script (an `if` condition never triggers it).
RC=0
run() {
  if "$ATTNLENS" "$@" >"$T/stdout" 2>"$T/stderr"; then RC=0; else RC=$?; fi
}

check() {
  local name=$1
  shift
  if "$@" >"$T/last.log" 2>&1; then pass "$name"; else fail "$name" "$(tail -n 20 "$T/last.log")"; fi
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
