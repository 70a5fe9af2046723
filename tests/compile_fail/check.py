#!/usr/bin/env python3
"""Compiles each snippet and checks the outcome it declares.

A snippet with lines `// expect-error: <text>` must fail to compile, with
each <text> in the compiler's output (eddy's static_assert messages). One
without must compile: the controls, which show that a failure comes from
the misuse and not from the harness. A snippet with a line
`// compilers: <id> ...` is checked only with those compilers (meson's ids:
gcc, clang), and skipped with others.

usage: check.py COMPILER_ID SNIPPET... -- COMPILER [ARG...]
"""
import subprocess
import sys


def expected_errors(path):
    with open(path, encoding="utf-8") as f:
        return [line.split("expect-error:", 1)[1].strip() for line in f if "expect-error:" in line]


def compilers_of(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "// compilers:" in line:
                return line.split("// compilers:", 1)[1].split()
    return None


def main(argv):
    split = argv.index("--")
    compiler_id, snippets, compiler = argv[0], argv[1:split], argv[split + 1:]
    failures = 0
    skipped = 0
    for snippet in snippets:
        only = compilers_of(snippet)
        if only is not None and compiler_id not in only:
            print("skip " + snippet + " (checked with " + ", ".join(only) + " only)")
            skipped += 1
            continue
        expected = expected_errors(snippet)
        run = subprocess.run(compiler + ["-fsyntax-only", snippet], capture_output=True, text=True)
        output = run.stdout + run.stderr
        if not expected:
            ok = run.returncode == 0
            why = "" if ok else "a control failed to compile:\n" + output
        else:
            missing = [text for text in expected if text not in output]
            ok = run.returncode != 0 and not missing
            if run.returncode == 0:
                why = "compiled, but must be refused"
            else:
                why = "refused, but without: " + "; ".join(missing) + "\n" + output
        print(("ok   " if ok else "FAIL ") + snippet)
        if not ok:
            print(why)
            failures += 1
    checked = len(snippets) - skipped
    print(f"{checked - failures} of {checked} snippets as expected ({skipped} skipped)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
