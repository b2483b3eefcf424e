#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 30 s each), seeded with the worked examples
# of docs/examples and the format's tokens. Needs the nightly toolchain and cargo-fuzz (installed
# here if missing). A crash leaves its input under fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
cargo +nightly fuzz build
# target, its dictionary, its seed files (docs/examples).
targets=(
  "refund_batch refund.dict refund-batch.txt"
  "refund_result refund.dict refund-result.txt"
  "day_file recon.dict signup-recon.txt order-recon.txt clearing.txt"
)
for entry in "${targets[@]}"; do
  read -r target dict seeds <<<"$entry"
  corpus="corpus/${target}"
  mkdir -p "$corpus"
  for seed in $seeds; do
    cp "../docs/examples/${seed}" "$corpus/"
  done
  echo "-- fuzz ${target} for ${seconds} s"
  log="$(mktemp)"
  if ! cargo +nightly fuzz run "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=4096 -dict="$dict" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: ${target} failed; the input is under fuzz/artifacts/${target}/" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log"
done
