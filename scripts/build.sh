#!/usr/bin/env bash
# scripts/build.sh VARIANT: configures (once) and builds build-VARIANT/.
#   plain  g++, release-with-debug-info            (build/)
#   asan   clang++, AddressSanitizer + UBSan       (build-asan/)
#   tsan   g++, ThreadSanitizer                    (build-tsan/)
# WERROR=1 turns warnings into errors (CI does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

variant=${1:-plain}
args=(-Dwerror="$([[ ${WERROR:-0} == 1 ]] && echo true || echo false)")
case $variant in
  plain) dir=build; export CXX=${CXX:-g++} ;;
  asan)
    dir=build-asan
    export CXX=clang++
    # -fno-sanitize=function: clang 14's function-type check cannot assemble
    # some coroutine lambdas ("Cannot represent a difference across sections").
    args+=(-Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false -Dbuildtype=debug
      -Dcpp_args=-fno-sanitize=function)
    ;;
  tsan)
    dir=build-tsan
    export CXX=g++
    args+=(-Db_sanitize=thread -Dbenchmarks=false -Dbuildtype=debugoptimized)
    ;;
  *) echo "usage: scripts/build.sh plain|asan|tsan" >&2; exit 2 ;;
esac

if [[ -f $dir/build.ninja ]]; then
  meson configure "$dir" "${args[@]}" >/dev/null
else
  meson setup "$dir" "${args[@]}" >/dev/null
fi
ninja -C "$dir" >&2
echo "$dir"
