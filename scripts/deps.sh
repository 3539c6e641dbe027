#!/usr/bin/env bash
# Installs what the lab and the tests need on Debian 12, only what is missing.
# Sourced by demo.sh and test.sh; safe to run again.
set -euo pipefail

PACKAGES=(frr bird2 iproute2 procps tcpdump)
# VRRP interop (tests/vrrp_keepalived.rs): keepalived as the peer.
PACKAGES+=(keepalived)
# The IPVS VM (`anycastd-lab vm`, tests/vm.rs): this machine's kernel may
# lack IPVS, so tests boot Debian's kernel under qemu (TCG) with an
# initramfs of busybox-static; xz unpacks the kernel for a direct (PVH)
# boot; ipvsadm runs inside from the host's root.
PACKAGES+=(qemu-system-x86 busybox-static xz-utils ipvsadm)

if [ "$(id -u)" -ne 0 ]; then
  echo "anycastd: the lab creates network namespaces and installs packages: run as root" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # FRR's and BIRD's own services are never started: the lab runs private
  # instances inside its namespaces.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  for c in "$HOME/.cargo/bin/cargo" /usr/local/cargo/bin/cargo; do
    [ -x "$c" ] && export PATH="$(dirname "$c"):$PATH" && break
  done
fi
command -v cargo >/dev/null || {
  echo "anycastd: cargo (Rust 1.85 or newer, from rustup) is needed to build" >&2
  exit 1
}
