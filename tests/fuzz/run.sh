#!/usr/bin/env bash
# Runs the libFuzzer harnesses built in build-fuzz (cmake -DATTNLENS_FUZZ=ON with CC=clang CXX=clang++).
#   run.sh short           every harness on every committed regression input, then a fixed number of runs over its
#                          seed corpus (a CI check: about a minute in all)
#   run.sh long SECONDS    every harness for SECONDS, growing build-fuzz/corpus/<harness>; prints executions and
#                          coverage per harness at the end
# Any sanitizer report, exception other than attnlens::InputError, abort, timeout or memory over 2 GB is a finding:
# the input is saved under build-fuzz/findings/<harness>/ and the script exits 1.
# Env: FUZZ_BUILD (default <repo>/build-fuzz), FUZZ_HARNESSES (default: all), FUZZ_JOBS (long: harnesses run at once,
# default 1), FUZZ_SHORT_RUNS (default 3000).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
harnesses=${FUZZ_HARNESSES:-"npy safetensors model_config vocab wordpiece bpe text_dataset run_table datasets image options"}
limits=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=30)
mode=${1:-}

usage() {
  echo "usage: $0 short | long SECONDS" >&2
  exit 2
}

for h in $harnesses; do
  [ -x "$build/tests/fuzz/fuzz_$h" ] || { echo "fuzz: $build/tests/fuzz/fuzz_$h is missing (build $build first)" >&2; exit 2; }
done

# One harness's dictionary option, when it has one.
dict() { [ -f "$here/dicts/$1.dict" ] && echo "-dict=$here/dicts/$1.dict"; }

findings=0
report_finding() {  # report_finding HARNESS LOG
  findings=$((findings + 1))
  echo "fuzz: FINDING in $1 (log: $2; inputs: $build/findings/$1/)" >&2
  grep -E "ERROR: |runtime error|SUMMARY|uncaught exception|invariant failed|Test unit written" "$2" | head -8 >&2
}

case "$mode" in
  short)
    runs=${FUZZ_SHORT_RUNS:-3000}
    start=$SECONDS
    for h in $harnesses; do
      bin=$build/tests/fuzz/fuzz_$h
      work=$build/short/$h
      rm -rf "$work" && mkdir -p "$work/corpus" "$build/findings/$h"
      log=$work/log.txt
      t0=$SECONDS
      # 1. every committed regression input, once each
      regressions=()
      if [ -d "$here/regressions/$h" ]; then
        while IFS= read -r -d '' f; do regressions+=("$f"); done < <(find "$here/regressions/$h" -type f -print0 | sort -z)
      fi
      if [ ${#regressions[@]} -gt 0 ]; then
        if ! "$bin" "${limits[@]}" -artifact_prefix="$build/findings/$h/" "${regressions[@]}" >"$log" 2>&1; then
          report_finding "$h" "$log"
          continue
        fi
      fi
      # 2. a fixed number of runs over the seeds (new inputs go to a scratch corpus, never into the tree)
      if ! "$bin" "${limits[@]}" $(dict "$h") -runs="$runs" -seed=1 -artifact_prefix="$build/findings/$h/" \
          "$work/corpus" "$here/seeds/$h" >>"$log" 2>&1; then
        report_finding "$h" "$log"
        continue
      fi
      printf 'fuzz: %-13s ok  %3d regressions, %d runs, %3d s\n' "$h" ${#regressions[@]} "$runs" $((SECONDS - t0))
    done
    echo "fuzz: short run done in $((SECONDS - start)) s, $findings finding(s)"
    ;;
  long)
    seconds=${2:-}
    [[ "$seconds" =~ ^[0-9]+$ ]] || usage
    jobs=${FUZZ_JOBS:-1}
    mkdir -p "$build/long"
    run_one() {  # run_one HARNESS
      local h=$1 bin=$build/tests/fuzz/fuzz_$1 corpus=$build/corpus/$1
      mkdir -p "$corpus" "$build/findings/$h"
      # -fork keeps going after a finding would be nicer, but one process gives clean final stats; a finding stops
      # the harness and is reported.
      "$bin" "${limits[@]}" $(dict "$h") -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$build/findings/$h/" "$corpus" "$here/seeds/$h" >"$build/long/$h.log" 2>&1
      echo $? >"$build/long/$h.rc"
    }
    running=0
    for h in $harnesses; do
      run_one "$h" &
      running=$((running + 1))
      if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
      fi
    done
    wait
    printf '%-13s %12s %8s %8s %8s %s\n' harness executions cov ft corpus result
    for h in $harnesses; do
      log=$build/long/$h.log
      execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
      last=$(grep -E '^#[0-9]+' "$log" | tail -1)
      cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
      ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
      corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
      result=ok
      if [ "$(cat "$build/long/$h.rc")" != 0 ]; then
        result=FINDING
        report_finding "$h" "$log"
      fi
      printf '%-13s %12s %8s %8s %8s %s\n' "$h" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
    done
    ;;
  *)
    usage
    ;;
esac
[ "$findings" -eq 0 ]
