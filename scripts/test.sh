#!/usr/bin/env bash
# Every test: formatting, lints, unit tests and the lab's integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --no-fail-fast
# Every fuzz target, briefly (12 s each, seeded from the golden captures
# and fixtures; scripts/fuzz-long.sh runs them for hours).
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz
source scripts/fuzz.sh
fuzz_seeds
fuzz_build "${FUZZ_TARGETS[@]}"
fuzz_log=$(mktemp -d)
passed=0
failed=0
for t in "${FUZZ_TARGETS[@]}"; do
  if fuzz_one "$t" 12 -1 "$fuzz_log/${t##*:}.log"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed (logs in $fuzz_log)"
[ "$failed" -eq 0 ]
