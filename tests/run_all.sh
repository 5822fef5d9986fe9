#!/bin/sh
# Runs each test binary given; prints one line per binary and a final
# "N passed, N failed" line; exits nonzero if any failed.
pass=0; fail=0; failed=""
for t in "$@"; do
    name=$(basename "$t")
    start=$(date +%s)
    if out=$("$t" 2>&1); then
        pass=$((pass+1)); echo "PASS $name ($(( $(date +%s) - start ))s)"
    else
        fail=$((fail+1)); failed="$failed $name"
        echo "FAIL $name"; echo "$out" | tail -40 | sed 's/^/    /'
    fi
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
