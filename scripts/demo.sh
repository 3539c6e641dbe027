#!/usr/bin/env bash
# The main job: bring up the classic design (FRR router, two FRR directors
# advertising a VIP), show how client requests spread and how a director
# failure is handled, then tear everything down.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --release --quiet
exec ./target/release/anycastd lab demo "${1:-topologies/classic-frr.toml}"
