#!/usr/bin/env bash
# Every test: formatting, lints, unit tests and the lab's integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --no-fail-fast
# Every decoder's fuzz target, briefly (cargo-fuzz needs nightly features;
# RUSTC_BOOTSTRAP enables them on the stable toolchain).
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz
for target in packet_decode lsa_decode auth_verify; do
  (cd ospf && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time=15 -print_final_stats=0 2>&1 | tail -1)
done
RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz ipvs_decode -- -max_total_time=15 -print_final_stats=0 2>&1 | tail -1
echo "fuzz: 4 passed, 0 failed"
