#!/usr/bin/env bash
# The main job: bring up three anycastd directors behind an FRR router
# (topologies/anycast-frr.toml), show how client requests spread, how a
# health failure and a drain are handled, then tear everything down.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --release --quiet --workspace
exec ./target/release/anycastd-lab demo "${1:-topologies/anycast-frr.toml}"
