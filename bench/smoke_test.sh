#!/usr/bin/env bash
# Smoke test for eddy-workloads (meson suite 'bench'): runs one workload with a
# small N and checks the exit status and the peers' one-line contract
#   <workload> eddy <ops_per_sec> <ns_per_op> n=<N> samples_s=<s1,...>
# It checks no timing: the machine may be as slow as it likes.
#
#   smoke_test.sh <eddy-workloads> <workload> <N> <reps>
#   smoke_test.sh <eddy-workloads> --rejects <workload>   # must exit 2, print nothing
set -euo pipefail

prog=$1
if [[ $2 == --rejects ]]; then
  wl=$3
  status=0
  out=$("$prog" "$wl" 10 1 2>/dev/null) || status=$?
  if [[ $status != 2 || -n $out ]]; then
    echo "FAIL: '$wl' should be rejected with exit status 2 and no output;" \
      "got status $status, output '$out'" >&2
    exit 1
  fi
  exit 0
fi

wl=$2 n=$3 reps=$4
out=$("$prog" "$wl" "$n" "$reps")
num='[0-9]+\.[0-9]{6}'
re="^$wl eddy [0-9]+ [0-9]+\.[0-9] n=$n samples_s=$num(,$num){$((reps - 1))}\$"
if [[ $(wc -l <<<"$out") != 1 || ! $out =~ $re ]]; then
  echo "FAIL: output does not follow the contract ($re):" >&2
  echo "$out" >&2
  exit 1
fi
echo "$out"
