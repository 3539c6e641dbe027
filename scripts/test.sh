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
# instance_script is the stateful one: a hostile host's packets against a
# director and its router, Full with each other (ospf::fuzzing).
for target in packet_decode lsa_decode auth_verify instance_script; do
  (cd ospf && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time=15 -print_final_stats=0 2>&1 | tail -1)
done
(cd bfd && RUSTC_BOOTSTRAP=1 cargo fuzz run control_decode -- -max_total_time=15 -print_final_stats=0 2>&1 | tail -1)
# The root package's decoders (fuzz/: each target compiles its sans-IO
# codec in by path, so only the codec goes through the sanitizers).
root_targets=(ipvs_decode vrrp_decode)
for target in "${root_targets[@]}"; do
  RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz "$target" -- -max_total_time=15 -print_final_stats=0 2>&1 | tail -1
done
echo "fuzz: $((5 + ${#root_targets[@]})) passed, 0 failed"
