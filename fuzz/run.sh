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
for target in refund_batch refund_result; do
  corpus="corpus/${target}"
  mkdir -p "$corpus"
  cp "../docs/examples/refund-${target#refund_}.txt" "$corpus/"
  echo "-- fuzz ${target} for ${seconds} s"
  log="$(mktemp)"
  if ! cargo +nightly fuzz run "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=4096 -dict=refund.dict -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: ${target} failed; the input is under fuzz/artifacts/${target}/" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log"
done
