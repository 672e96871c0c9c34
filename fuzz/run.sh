#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), on the stable toolchain.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
for t in "${targets[@]}"; do
  # New inputs go to work/ (not committed); corpus/ holds the committed seeds.
  mkdir -p "work/$t" "corpus/$t"
  echo "== $t: ${secs}s"
  cargo fuzz run "$t" "work/$t" "corpus/$t" -- -max_total_time="$secs" -max_len=8192 -timeout=10 -print_final_stats=1
done
