#!/usr/bin/env bash
# scripts/compare.sh: eddy beside its peers (raw libuv in C, Boost.Asio, a plain
# C++ baseline, uvloop, asyncio) on the workloads of bench/peers/README.md, in
# one run on this machine. Installs the Debian packages that are missing, builds
# eddy and the peers in release mode (build-compare/), runs every peer on every
# workload several times, interleaved, and writes a markdown table (median
# ns/op, ratio to eddy, spread) and a chart.
#
#   scripts/compare.sh          full run (3 runs, canonical N; a few minutes):
#                               updates README.md's table and bench/peers/results/
#   scripts/compare.sh --quick  2 runs at N/10: under a minute, build-compare/compare/ only
#   scripts/compare.sh --runs 5 --reps 7 --peers eddy,libuv --workloads call_soon,chain
#   scripts/compare.sh --help   every option
#
# Without --publish/--no-publish, only a full run (every peer and workload,
# canonical N, not --quick) updates README.md; any run writes runs.csv,
# table.md and chart.svg to build-compare/compare/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

driver=bench/peers/compare.py
python=/usr/bin/python3 # Debian's: python3-uvloop and python3-matplotlib live there
for arg in "$@"; do
  if [[ $arg == -h || $arg == --help ]]; then
    exec "$python" "$driver" --help
  fi
done

scripts/deps.sh --peers

dir=build-compare
options=(--buildtype=release -Dtests=false -Dexamples=false -Dbenchmarks=true -Dpeer_asio=enabled)
if [[ -f $dir/build.ninja ]]; then
  meson configure "$dir" "${options[@]}" >/dev/null
else
  CXX=${CXX:-g++} CC=${CC:-gcc} meson setup "$dir" "${options[@]}" >/dev/null
fi
ninja -C "$dir" >&2

exec "$python" "$driver" --build-dir "$dir" --python "$python" "$@"
