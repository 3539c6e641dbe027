#!/usr/bin/env bash
# Every fuzz target for a long time, one after the other, each in one
# process (one core), seeded like the test command's short runs and
# keeping its corpus. Each runs until its time or its execution count is
# reached, whichever comes first; a line per target (target, executions,
# seconds, finding) goes to the summary file, with the date and commit.
#
#   scripts/fuzz-long.sh [-t SECONDS] [-n RUNS] [-o SUMMARY] [TARGET...]
#
# Defaults: 3600 s and 10 million executions per target, every target,
# summary in fuzz-long-summary.txt. A TARGET is a name (lsa_decode) from
# the list in scripts/fuzz.sh. Exits non-zero if any target found something
# (the input is in the fuzz dir's artifacts/).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=3600
runs=10000000
summary=fuzz-long-summary.txt
while getopts "t:n:o:" opt; do
  case "$opt" in
    t) seconds="$OPTARG" ;;
    n) runs="$OPTARG" ;;
    o) summary="$OPTARG" ;;
    *) sed -n '2,15p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz
source scripts/fuzz.sh
selected=()
for t in "${FUZZ_TARGETS[@]}"; do
  if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx "${t#*:}"; then
    selected+=("$t")
  fi
done
[ "${#selected[@]}" -gt 0 ] || { echo "no such target: $*" >&2; exit 2; }
fuzz_seeds
fuzz_build "${selected[@]}"
logs=$(mktemp -d)
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes'), up to ${seconds} s / ${runs} runs per target, one process each"
  printf '%-16s %12s %7s %s\n' target executions time finding
} >>"$summary"
found=0
for t in "${selected[@]}"; do
  line=$(fuzz_one "$t" "$seconds" "$runs" "$logs/${t#*:}.log") || found=1
  echo "$line" | tee -a "$summary"
done
echo "summary: $summary (logs in $logs)"
exit "$found"
