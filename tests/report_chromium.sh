#!/bin/sh
# Loads a lipgan HTML report in headless Chromium and checks that every
# <img> decoded (naturalWidth > 0), that no script error happened, and that
# the console logged no error (failed or blocked resource, uncaught
# exception). The page's inline check script (src/io/report.c) writes
#   <div id="lg-check" data-images-ok=N data-images-bad=N data-errors=N>
# into the DOM on load; --dump-dom prints the DOM after the load event.
#
#   tests/report_chromium.sh REPORT.html [EXPECTED_IMAGES] [SCREENSHOT.png]
#
# Exit: 0 pass, 1 fail, 77 Chromium not installed (Debian: apt-get install
# chromium). tests/test_report.c runs it when Chromium is installed.
set -u
html=${1:?usage: report_chromium.sh REPORT.html [EXPECTED_IMAGES] [SCREENSHOT.png]}
want=${2:-}
shot=${3:-}
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome) || {
    echo "report_chromium: chromium not found; skipped"
    exit 77
}
[ -f "$html" ] || { echo "report_chromium: $html not found"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lg_chromium.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
url="file://$(realpath "$html")"
# --no-sandbox: tests may run as root in containers; a private profile dir
# keeps runs independent; the virtual time budget lets the load event fire.
flags="--headless --disable-gpu --no-sandbox --no-first-run --disable-extensions \
--user-data-dir=$tmp/profile --enable-logging=stderr --v=0 --virtual-time-budget=10000"
# shellcheck disable=SC2086
timeout 120 "$chrome" $flags --dump-dom "$url" >"$tmp/dom.html" 2>"$tmp/log.txt"
rc=$?
if [ $rc -ne 0 ]; then
    echo "report_chromium: chromium exited $rc"; tail -5 "$tmp/log.txt"; exit 1
fi
tag=$(grep -o '<div id="lg-check"[^>]*>' "$tmp/dom.html" | head -1)
if [ -z "$tag" ]; then
    echo "report_chromium: no lg-check marker in the DOM (the check script did not run)"; exit 1
fi
attr() { printf '%s\n' "$tag" | sed -n "s/.*$1=\"\([0-9]*\)\".*/\1/p"; }
ok=$(attr data-images-ok); bad=$(attr data-images-bad); errs=$(attr data-errors)
fail=0
echo "report_chromium: images ok $ok, broken $bad, script errors $errs"
[ "$bad" = 0 ] || { echo "report_chromium: $bad image(s) did not decode"; fail=1; }
[ "$errs" = 0 ] || { echo "report_chromium: $errs script error(s)"; fail=1; }
if [ -n "$want" ] && [ "$ok" != "$want" ]; then
    echo "report_chromium: $ok images decoded, expected $want"; fail=1
fi
# console output: any error-level console message fails the check
if grep -E 'CONSOLE' "$tmp/log.txt" | grep -Eiq 'error|uncaught|failed to load|not allowed|refused'; then
    echo "report_chromium: console errors:"; grep -E 'CONSOLE' "$tmp/log.txt" | head -5; fail=1
fi
if [ -n "$shot" ]; then
    # shellcheck disable=SC2086
    timeout 120 "$chrome" $flags --hide-scrollbars --window-size=1400,5000 --screenshot="$shot" "$url" \
        >/dev/null 2>&1 || { echo "report_chromium: screenshot failed"; fail=1; }
fi
exit $fail
