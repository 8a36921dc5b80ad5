#!/usr/bin/env bash
# Compiler/linker launcher that logs each step's wall, user and system seconds, to find what makes the build slow.
# Usage: cmake -DCMAKE_CXX_COMPILER_LAUNCHER=ops/timed-compile.sh -DCMAKE_CXX_LINKER_LAUNCHER=ops/timed-compile.sh ...
# then BLOBFERRY_TIMING_LOG=/tmp/times.tsv cmake --build ...; sort -k2 -rn /tmp/times.tsv | head.
set -u
log="${BLOBFERRY_TIMING_LOG:-/dev/null}"
output=""
previous=""
for argument in "$@"; do
  # The object or executable being produced names the line; -o is what both compile and link pass.
  [[ "$previous" == "-o" ]] && output="$argument"
  previous="$argument"
done
timing=$(mktemp)
/usr/bin/time -f "%e	%U	%S" -o "$timing" "$@"
status=$?
# A failed step says so (4th column), so a sum can leave it out.
printf '%s\t%s\t%s\n' "$(tail -n 1 "$timing")" "$status" "$output" >> "$log"
rm -f "$timing"
exit $status
