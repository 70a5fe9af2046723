#!/usr/bin/env python3
"""check_output.py PROGRAM LINE...: runs PROGRAM and checks that it exits 0 and that
its stdout contains each LINE as a substring, in the given order. A LINE that
starts with "~" must appear somewhere, in any order (for output whose order
depends on the machine's load, such as two timers of different clocks)."""
import subprocess
import sys

program, expected = sys.argv[1], sys.argv[2:]
run = subprocess.run([program], capture_output=True, text=True, timeout=60)
sys.stdout.write(run.stdout)
sys.stderr.write(run.stderr)
if run.returncode != 0:
    sys.exit(f"{program} exited with {run.returncode}")
position = 0
for text in expected:
    if text.startswith("~"):
        if text[1:] not in run.stdout:
            sys.exit(f"missing: {text[1:]!r}")
        continue
    found = run.stdout.find(text, position)
    if found < 0:
        sys.exit(f"missing, or out of order: {text!r}")
    position = found + len(text)
print(f"ok: {len(expected)} expected lines in order")
