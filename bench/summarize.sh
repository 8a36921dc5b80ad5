#!/usr/bin/env bash
# Turns bench/out/results.csv into medians, ratios blobferry/rclone, the targets' verdicts and chart.png.
set -euo pipefail

OUT="${1:?usage: bench/summarize.sh OUT_DIR}"
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CSV="$OUT/results.csv"
[[ -s "$CSV" ]] || { echo "summarize: no $CSV" >&2; exit 2; }

# medians.csv: set,tool,runs,wall,cpu,rss_mib,mib_per_s,s3rver_cpu (only runs that copied everything intact).
# mawk has no asort, hence the insertion sort.
awk -F, '
  function median(list,   n, v, i, j, t) {
    n = split(list, v, " ")
    for (i = 2; i <= n; i++) { t = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  NR > 1 && $13 == 1 {
    k = $4 "," $5
    if (!(k in runs)) order[++keys] = k
    runs[k]++; bytes[k] = $7
    wall[k] = wall[k] " " $8; cpu[k] = cpu[k] " " $11; rss[k] = rss[k] " " $12; srv[k] = srv[k] " " ($14 + $15)
  }
  END {
    for (i = 1; i <= keys; i++) {
      k = order[i]; w = median(wall[k])
      printf "%s,%d,%.2f,%.2f,%.1f,%.1f,%.2f\n", k, runs[k], w, median(cpu[k]), median(rss[k]) / 1024, (w > 0 ? bytes[k] / 1048576 / w : 0), median(srv[k])
    }
  }' "$CSV" >"$OUT/medians.csv"

value() { awk -F, -v s="$1" -v t="$2" -v c="$3" '$1 == s && $2 == t { print $c }' "$OUT/medians.csv"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
within() { awk -v r="$1" -v limit="$2" 'BEGIN { exit !(r != "-" && r + 0 <= limit + 0) }'; }

SETS="$(awk -F, 'NR > 1 && !seen[$4]++ { printf "%s ", $4 }' "$CSV")"
echo "== copies: medians over the rounds (load1 during runs: $(awk -F, 'NR > 1 { printf "%s ", $2 }' "$CSV"))"
printf '%-6s %-12s %4s %9s %9s %9s %9s %12s\n' set tool runs wall_s cpu_s rss_MiB MiB/s s3rver_cpu_s
awk -F, '{ printf "%-6s %-12s %4s %9s %9s %9s %9s %12s\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$OUT/medians.csv"

echo "== ratios blobferry / rclone (wall, cpu, rss)"
VERDICTS=()
verdict() {  # name ratio limit
  if [[ "$2" == - ]]; then VERDICTS+=("no data $1"); elif within "$2" "$3"; then VERDICTS+=("met     $1: $2 <= $3"); else VERDICTS+=("MISSED  $1: $2 > $3"); fi
}
for set in $SETS; do
  for tool in embedded distributed; do
    w="$(ratio "$(value "$set" "$tool" 4)" "$(value "$set" rclone 4)")"
    c="$(ratio "$(value "$set" "$tool" 5)" "$(value "$set" rclone 5)")"
    r="$(ratio "$(value "$set" "$tool" 6)" "$(value "$set" rclone 6)")"
    printf '%-6s %-12s wall %5s  cpu %5s  rss %5s\n' "$set" "$tool" "$w" "$c" "$r"
    case "$set" in
      small) verdict "$set $tool wall" "$w" 0.8 ;;
      *) verdict "$set $tool wall" "$w" 1.0 ;;
    esac
    verdict "$set $tool cpu" "$c" 0.5
    verdict "$set $tool rss" "$r" 0.5
  done
done
huge_rss="$(value huge embedded 6)"
if [[ -n "$huge_rss" ]]; then
  if within "$huge_rss" 64; then VERDICTS+=("met     huge embedded rss ${huge_rss} MiB <= 64"); else VERDICTS+=("MISSED  huge embedded rss ${huge_rss} MiB > 64"); fi
fi
echo "== targets"
printf '%s\n' "${VERDICTS[@]}"

# chart.dat: one row per data set, columns MiB/s then RSS per tool.
{
  echo "# set embedded distributed rclone embedded_rss distributed_rss rclone_rss"
  for set in $SETS; do
    echo "$set $(value "$set" embedded 7) $(value "$set" distributed 7) $(value "$set" rclone 7)" \
      "$(value "$set" embedded 6) $(value "$set" distributed 6) $(value "$set" rclone 6)"
  done
} | awk '{ for (i = 1; i <= NF; i++) if ($i == "") $i = 0; print }' >"$OUT/chart.dat"
if command -v gnuplot >/dev/null; then
  gnuplot -e "datafile='$OUT/chart.dat'; outfile='$OUT/chart.png'" "$BENCH/chart.gp" 2>"$OUT/gnuplot.log" ||
    echo "summarize: gnuplot failed, see $OUT/gnuplot.log" >&2
else
  echo "summarize: gnuplot missing, no chart" >&2
fi
