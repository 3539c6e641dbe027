#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, cut from the golden captures and
fixtures the tests already use, written to <fuzz dir>/seeds/<target>/
(generated, not checked in). Usage: scripts/fuzz-seeds.py [repo root]

- ospf/fuzz: the OSPF captures of ospf/tests/data (FRR and BIRD; null,
  simple, keyed MD5, HMAC-SHA-256): IP datagrams (ip_header), OSPF packets
  with their trailers (packet_decode, auth_verify), every LSA of their Link
  State Updates (lsa_decode). instance_script takes its own script format
  and keeps no seeds.
- fuzz/: the IPVS generic-netlink capture of tests/data/ipvs (ipvs_decode:
  attribute streams and each attribute's payload); the bytes of the unit
  tests' fixtures for VRRP, ARP and ICMP (vrrp_decode, vrrp_frames,
  icmp_reply), since no VRRP capture is kept; one line of each control
  request and a streamed reply (control_request).
- fuzz/daemon: the config files of contrib/ and every raw string literal
  of the config tests (src/config.rs, src/vrrp/config.rs,
  src/health/config.rs) (config_load).
"""
import glob
import hashlib
import json
import os
import re
import struct
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))


def records(path):
    data = open(path, "rb").read()
    magic, _, _, _, _, _, linktype = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4, f"{path}: not a little-endian pcap"
    at = 24
    while at + 16 <= len(data):
        caplen = struct.unpack("<I", data[at + 8:at + 12])[0]
        yield linktype, data[at + 16:at + 16 + caplen]
        at += 16 + caplen


def write(fuzz_dir, target, blobs):
    out = os.path.join(ROOT, fuzz_dir, "seeds", target)
    os.makedirs(out, exist_ok=True)
    n = 0
    for b in blobs:
        name = hashlib.sha1(b).hexdigest()
        path = os.path.join(out, name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(b)
        n += 1
    return n


def ospf_seeds():
    datagrams, packets, lsas = [], [], []
    data = os.path.join(ROOT, "ospf/tests/data")
    for name in sorted(os.listdir(data)):
        if not name.endswith(".pcap"):
            continue
        for linktype, frame in records(os.path.join(data, name)):
            assert linktype == 1 and frame[12:14] == b"\x08\x00", f"{name}: IPv4 over Ethernet"
            ip = frame[14:]
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack(">H", ip[2:4])[0]
            datagrams.append(ip[:total])
            ospf = ip[ihl:total]
            packets.append(ospf)
            length = struct.unpack(">H", ospf[2:4])[0]
            if ospf[1] == 4 and length >= 28:  # Link State Update
                count = struct.unpack(">I", ospf[24:28])[0]
                at = 28
                for _ in range(count):
                    if at + 20 > length:
                        break
                    n = struct.unpack(">H", ospf[at + 18:at + 20])[0]
                    if n < 20 or at + n > length:
                        break
                    lsas.append(ospf[at:at + n])
                    at += n
    return {"ip_header": datagrams, "packet_decode": packets, "auth_verify": packets, "lsa_decode": lsas}


def ipvs_seeds():
    out = []
    for _, rec in records(os.path.join(ROOT, "tests/data/ipvs/ipvsadm.pcap")):
        nl = rec[16:]  # LINKTYPE_NETLINK: a 16-byte cooked header first
        while len(nl) >= 16:
            length = struct.unpack("<I", nl[:4])[0]
            if length < 20 or length > len(nl):
                break
            attrs = nl[20:length]
            out.append(attrs)
            at = 0
            while at + 4 <= len(attrs):
                alen = struct.unpack("<H", attrs[at:at + 2])[0]
                if alen < 4 or at + alen > len(attrs):
                    break
                out.append(attrs[at + 4:at + alen])
                at += (alen + 3) // 4 * 4
            nl = nl[(length + 3) // 4 * 4:]
    return out


def ipv4(proto, src, dst, payload, ttl=255):
    total = 20 + len(payload)
    return bytes([0x45, 0xC0]) + struct.pack(">H", total) + bytes([0, 0, 0, 0, ttl, proto, 0, 0]) + bytes(src) + bytes(dst) + payload


def root_seeds():
    # The VRRP v3 advertisement of src/vrrp/frame.rs's unit test (VRID 51,
    # priority 100, one address) and a v2 one with a simple password.
    v3 = bytes([0x31, 51, 100, 1, 0, 100, 0, 0, 192, 0, 2, 10])
    v2 = bytes([0x21, 51, 100, 1, 1, 1, 0, 0, 192, 0, 2, 10]) + b"1111\0\0\0\0"
    adverts = [v3, v2]
    ip_vrrp = [ipv4(112, [198, 18, 0, 2], [224, 0, 0, 18], a) for a in adverts]
    arp = bytes([0xFF] * 6 + [2, 0, 0, 0, 0, 1, 8, 6, 0, 1, 8, 0, 6, 4, 0, 2, 2, 0, 0, 0, 0, 1, 192, 0, 2, 10] + [0] * 6 + [192, 0, 2, 10])
    echo_reply = bytes([0, 0, 0, 0, 0, 7, 0, 9]) + b"anycastd"
    echo_v6 = bytes([129, 0, 0, 0, 0x12, 0x34, 0, 7]) + b"anycastd"
    icmp_ip = ipv4(1, [198, 18, 0, 1], [198, 18, 0, 2], echo_reply, ttl=64)
    requests = [
        {"cmd": "advertise", "vip": "192.0.2.10", "cost": 10, "area": "0.0.0.0", "force": True},
        {"cmd": "withdraw", "vip": "192.0.2.10"},
        {"cmd": "server", "vip": "192.0.2.10", "server": "198.18.1.2", "disable": True},
        {"cmd": "stub-router", "on": True},
        {"cmd": "show-ospf-neighbor"},
        {"cmd": "show-ospf-database"},
        {"cmd": "show-ospf-lsa", "area": None, "lsa_type": 1, "link_state_id": "10.0.0.1", "advertising_router": "10.0.0.1"},
        {"cmd": "drain", "vip": None},
        {"cmd": "undrain", "vip": "192.0.2.10"},
        {"cmd": "log-level", "filter": "info,ospf=debug"},
        {"cmd": "status"},
        {"cmd": "reload"},
    ]
    lines = [json.dumps(r).encode() for r in requests]
    lines.append(b'{"type":1}\n{"type":5}\n{"end":true,"count":2}\n')
    return {
        "ipvs_decode": ipvs_seeds(),
        "vrrp_decode": adverts,
        "vrrp_frames": ip_vrrp + [arp, icmp_ip],
        "icmp_reply": [echo_reply, echo_v6, icmp_ip],
        "control_request": lines,
    }


def config_seeds():
    out = [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(ROOT, "contrib/*.toml")))]
    for src in ("src/config.rs", "src/vrrp/config.rs", "src/health/config.rs"):
        text = open(os.path.join(ROOT, src), encoding="utf-8").read()
        out += [m.encode() for m in re.findall(r'r#"(.*?)"#', text, re.S)]
    return {"config_load": out}


def main():
    for fuzz_dir, seeds in (
        ("ospf/fuzz", ospf_seeds()),
        ("fuzz", root_seeds()),
        ("fuzz/daemon", config_seeds()),
    ):
        for target, blobs in seeds.items():
            n = write(fuzz_dir, target, blobs)
            assert n > 0, f"{target}: no seeds"
            print(f"seeds: {fuzz_dir}/seeds/{target}: {n}")


main()
