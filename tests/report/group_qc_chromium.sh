#!/usr/bin/env bash
# CTest group_qc_chromium: a cohort through perfq bids (participant, then group), its
# group_qc.html rendered by headless Chromium. Checks the rendered page (--dump-dom): one row
# per series, the noisy series' outlier cells marked, a strip plot per index, and every link
# to a series' report pointing at a file that exists.
#   usage: group_qc_chromium.sh <perfq executable> <scratch folder>
# Exit 77 (skip) without chromium.
set -euo pipefail

perfq="$1"
work="$2"
browser=""
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then browser="$(command -v "$name")"; break; fi
done
if [ -z "$browser" ]; then
  echo "SKIP: chromium is not installed (Debian package 'chromium'; scripts/setup installs it)"
  exit 77
fi

rm -rf "$work"
mkdir -p "$work"
fail() { echo "group_qc_chromium: FAIL: $*" >&2; exit 1; }

# Five series at SNR 8-11 and one at SNR 1: the last is the cohort's outlier.
for spec in 01:8 02:10 03:9 04:11 05:10 06:1; do
  "$perfq" phantom -o "$work/ds" --repeats 2 --snr "${spec##*:}" --subject "${spec%%:*}" \
    --seed "${spec%%:*}" >/dev/null
done
"$perfq" bids "$work/ds" "$work/out" participant --labels-dir "$work/ds/derivatives/truth" \
  --backend cpu --threads 2 --quiet >/dev/null
"$perfq" bids "$work/ds" "$work/out" group >/dev/null
page="$work/out/group_qc.html"
[ -f "$page" ] || fail "$page was not written"
[ -f "$work/out/group_qualitycontrol.tsv" ] || fail "group_qualitycontrol.tsv was not written"

dom="$(timeout 120 "$browser" --headless --disable-gpu --no-sandbox --no-first-run \
  --user-data-dir="$work/.chromium-profile" --host-resolver-rules="MAP * ~NOTFOUND" \
  --dump-dom "file://$page" 2>"$work/chromium.log")"
[ -n "$dom" ] || fail "chromium rendered nothing (log: $work/chromium.log)"
rows="$(echo "$dom" | grep -o '<td>sub-0[1-6]</td>' | wc -l)"
[ "$rows" -eq 6 ] || fail "expected 6 series rows in the rendered page, found $rows"
strips="$(echo "$dom" | grep -o '<svg class="strip"' | wc -l)"
[ "$strips" -eq 9 ] || fail "expected 9 strip plots, found $strips"
# The noisy series: its QEI cell marked an outlier; the others carry no mark.
echo "$dom" | tr '\n' ' ' | sed 's#</tr>#</tr>\n#g' | grep '<td>sub-06</td>' |
  grep -q 'class="outlier"' || fail "sub-06's outliers are not marked"
marked="$(echo "$dom" | tr '\n' ' ' | sed 's#</tr>#</tr>\n#g' | grep -v '<td>sub-06</td>' |
  grep -c 'class="outlier"' || true)"
[ "$marked" -eq 0 ] || fail "$marked other rows carry an outlier mark"
grep -P '^06\t' "$work/out/group_qualitycontrol.tsv" | grep -q 'qei' ||
  fail "group_qualitycontrol.tsv does not flag sub-06's QEI"
# Every report link resolves.
links=0
for href in $(echo "$dom" | grep -o 'href="sub-[^"]*_report.html"' | sed 's/href="//; s/"$//'); do
  [ -f "$work/out/$href" ] || fail "the link $href points at no file"
  links=$((links + 1))
done
[ "$links" -eq 6 ] || fail "expected 6 report links, found $links"
echo "group_qc_chromium: $rows series, $strips strip plots, $links report links; sub-06 flagged"
