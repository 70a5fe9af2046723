#!/usr/bin/env bash
# Quick start (2): installs what is missing, builds, and runs every test.
#   scripts/test.sh            the plain build (g++)
#   scripts/test.sh asan tsan  the same suite under ASan+UBSan (clang++) and TSan (g++)
# Exits non-zero if any build or test fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
variants=("$@")
((${#variants[@]})) || variants=(plain)
for v in "${variants[@]}"; do
  echo "=== eddy tests: $v ===" >&2
  dir=$(scripts/build.sh "$v")
  # Sanitizer runs: halt on the first report; TSan second_deadlock_stack helps reading.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
    meson test -C "$dir" --print-errorlogs --num-processes 2
done
