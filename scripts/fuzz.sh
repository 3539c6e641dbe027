#!/usr/bin/env bash
# The fuzz targets and how one is run; sourced by test.sh (briefly) and
# fuzz-long.sh (for hours). cargo-fuzz needs nightly features:
# RUSTC_BOOTSTRAP enables them on the stable toolchain.

# "fuzz dir:target", every target of the three fuzz crates:
# - ospf/fuzz: the OSPF codec, authentication, the raw socket's IPv4 header
#   check, and instance_script, the stateful one (a hostile host's packets
#   against a director and its router, Full with each other; ospf::fuzzing);
# - fuzz: the root package's sans-IO codecs, each compiled in by path so
#   only the codec goes through the sanitizers (IPVS replies, VRRP adverts,
#   the VRRP layer's IP header, ARP and ICMP, the health check's ICMP echo,
#   control-socket requests);
# - fuzz/daemon: the config file, which needs the daemon's module tree.
# - bfd/fuzz: the BFD control packet codec.
FUZZ_TARGETS=(
  ospf/fuzz:packet_decode ospf/fuzz:lsa_decode ospf/fuzz:auth_verify
  ospf/fuzz:instance_script ospf/fuzz:ip_header
  fuzz:ipvs_decode fuzz:vrrp_decode fuzz:vrrp_frames fuzz:icmp_reply
  fuzz:control_request
  fuzz/daemon:config_load
  bfd/fuzz:control_decode
)

# Seeds for every target from the golden captures and fixtures
# (<fuzz dir>/seeds/<target>/, not checked in).
fuzz_seeds() {
  python3 scripts/fuzz-seeds.py "$PWD" >/dev/null
}

# fuzz_build DIR:TARGET...: builds the fuzz crates of these targets (all
# their targets) once, before any runs.
fuzz_build() {
  local dir
  for dir in $(printf '%s\n' "${@%%:*}" | sort -u); do
    RUSTC_BOOTSTRAP=1 cargo fuzz build --fuzz-dir "$dir" >/dev/null 2>&1 ||
      RUSTC_BOOTSTRAP=1 cargo fuzz build --fuzz-dir "$dir"
  done
}

# fuzz_one DIR:TARGET SECONDS RUNS LOG: one process (one core), seeded,
# until SECONDS or RUNS executions, whichever comes first. Prints
# "target executions seconds result" (result: ok, or the crash input's
# path) and returns non-zero on a finding.
fuzz_one() {
  local dir="${1%%:*}" target="${1#*:}" seconds="$2" runs="$3" log="$4"
  local corpus="$PWD/$dir/corpus/$target" seeds="$PWD/$dir/seeds/$target"
  mkdir -p "$corpus"
  local dirs=("$corpus")
  [ -d "$seeds" ] && dirs+=("$seeds")
  local start end rc=0
  start=$(date +%s)
  RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir "$dir" "$target" "${dirs[@]}" -- \
    -max_total_time="$seconds" -runs="$runs" -timeout=30 -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  end=$(date +%s)
  local execs finding=ok
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    finding=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -1 | sed 's/Test unit written to //' || true)
    finding="FOUND ${finding:-exit $rc, see $log}"
  fi
  printf '%-16s %12s %6ss %s\n' "$target" "${execs:-?}" "$((end - start))" "$finding"
  [ "$rc" -eq 0 ]
}
