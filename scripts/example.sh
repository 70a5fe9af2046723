#!/usr/bin/env bash
# Quick start (1): installs what is missing, builds, and runs the flagship example.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
dir=$(scripts/build.sh plain)
exec "$dir/examples/tour"
