#!/usr/bin/env bash
# CTest report_chromium: renders a perfq report page in headless Chromium and checks that every
# image of the page loaded (naturalWidth > 0).
#   usage: report_chromium.sh <perfq executable> <scratch folder>
# The report itself carries no script, so a separate check page beside it loads the report in
# an iframe (same folder; --allow-file-access-from-files lets its script read the frame) and
# writes what it finds into its own DOM, which --dump-dom prints. A second run, on a copy with
# one figure removed, checks that the check can fail. Exit 77 (skip) without chromium.
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
fail() { echo "report_chromium: FAIL: $*" >&2; exit 1; }

# A multi-delay phantom through the BIDS-App: CBF, ATT, border zones, statistics, report.
"$perfq" phantom -o "$work/ds" --delays 0.5,1.25,2,2.75 --repeats 2 --snr 10 >/dev/null
"$perfq" bids "$work/ds" "$work/out" participant --labels-dir "$work/ds/derivatives/truth" \
  --backend cpu --threads 2 --quiet
perf="$work/out/sub-01/perf"
page="$perf/sub-01_report.html"
[ -f "$page" ] || fail "$page was not written"
expected="$(grep -o '<img ' "$page" | wc -l)"
[ "$expected" -ge 3 ] || fail "$page: expected 3 or more <img>, found $expected"

# check <folder>: writes <folder>/check.html, prints the RESULT lines Chromium reports.
check() {
  local folder="$1"
  cat >"$folder/check.html" <<'EOF'
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>report image check</title></head>
<body>
<pre id="result">PENDING</pre>
<iframe id="page" src="sub-01_report.html" width="1200" height="900"></iframe>
<script>
const frame = document.getElementById('page');
function check() {
  const out = document.getElementById('result');
  let doc = null;
  try { doc = frame.contentDocument; } catch (e) { doc = null; }
  if (!doc || !doc.body) { out.textContent = 'RESULT no-access'; return; }
  const images = Array.from(doc.images);
  if (images.some(i => !i.complete)) { setTimeout(check, 50); return; }
  const lines = ['RESULT images=' + images.length + ' loaded=' +
                 images.filter(i => i.naturalWidth > 0).length];
  for (const i of images) {
    lines.push((i.naturalWidth > 0 ? 'LOADED ' : 'BROKEN ') + i.getAttribute('src') + ' ' +
               i.naturalWidth + 'x' + i.naturalHeight);
  }
  out.textContent = lines.join('\n');
}
frame.addEventListener('load', check);
</script>
</body></html>
EOF
  # A profile of its own: tests may run side by side. No name resolves: nothing remote loads.
  timeout 120 "$browser" --headless --disable-gpu --no-sandbox --no-first-run \
    --user-data-dir="$folder/.chromium-profile" --allow-file-access-from-files \
    --host-resolver-rules="MAP * ~NOTFOUND" --virtual-time-budget=15000 \
    --dump-dom "file://$folder/check.html" 2>"$folder/chromium.log" |
    sed -n '/<pre id="result">/,/<\/pre>/p' | sed -e 's/<[^>]*>//g'
}

result="$(check "$perf")"
echo "$result"
echo "$result" | grep -q "^RESULT images=$expected loaded=$expected\$" ||
  fail "not every image of $page loaded (expected $expected; chromium log: $perf/chromium.log)"

# The check must be able to fail: the same page with one figure missing.
broken="$work/broken"
mkdir -p "$broken"
cp -r "$perf/figures" "$perf/sub-01_report.html" "$broken/"
rm "$broken/figures/sub-01_desc-att_montage.png"
result="$(check "$broken")"
echo "$result"
echo "$result" | grep -q "^RESULT images=$expected loaded=$((expected - 1))\$" ||
  fail "the check did not notice a missing image"
echo "$result" | grep -q "^BROKEN figures/sub-01_desc-att_montage.png" ||
  fail "the missing image was not named"

# A screenshot for people to look at (not checked beyond being written).
timeout 120 "$browser" --headless --disable-gpu --no-sandbox --no-first-run \
  --user-data-dir="$work/.chromium-profile" --hide-scrollbars --window-size=1200,2000 \
  --screenshot="$work/report.png" "file://$page" >/dev/null 2>&1 || true
[ -s "$work/report.png" ] && echo "screenshot: $work/report.png"
echo "report_chromium: every image of $page loaded in $("$browser" --version 2>/dev/null)"
