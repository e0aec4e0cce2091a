#!/usr/bin/env bash
# Sets up what benchmarks/arm_instruction_counts.py needs on a Debian/Ubuntu x86 machine:
#   1. QEMU's linux-user emulator (qemu-user: the dynamically linked qemu-aarch64, which
#      loads TCG plugins; qemu-user-static cannot), debootstrap and gcc (apt);
#   2. an arm64 Debian root with Python 3 (debootstrap --foreign: packages are only
#      unpacked, no second stage, so neither chroot nor binfmt_misc is needed; the root is
#      used through qemu-aarch64 -L);
#   3. aarch64 wheels of ai-edge-litert and its dependencies (numpy, ...) in
#      <root>/opt/site, installed by the host's pip (--platform manylinux_*_aarch64);
#   4. the instruction-counting TCG plugin (benchmarks/arm_insn_plugin.c), compiled;
#   5. a smoke test: the plugin counts instructions of the arm64 Python importing LiteRT.
# Every step is skipped when its result is already there, so the script can be rerun.
#
# Usage (as root):
#   benchmarks/arm_setup.sh [--root /opt/arm64root] [--plugin-dir /opt/arm-qemu]
#       [--python python3] [--litert-version 2.3.0] [--suite bookworm]
#       [--mirror http://deb.debian.org/debian]
# --python is the host Python whose pip installs the wheels (and whose ai-edge-litert
# version is used when --litert-version is not given).
set -euo pipefail

ROOT=/opt/arm64root
PLUGIN_DIR=/opt/arm-qemu
PYTHON=python3
LITERT_VERSION=
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
ORIG_ARGS="$*"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "arm_setup.sh: error: $*" >&2; exit 1; }
step() { echo "== $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --plugin-dir) PLUGIN_DIR="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --litert-version) LITERT_VERSION="$2"; shift 2 ;;
    --suite) SUITE="$2"; shift 2 ;;
    --mirror) MIRROR="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (apt-get and debootstrap need it); try: sudo $0 $ORIG_ARGS"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian/Ubuntu hosts only"
[ "$(uname -m)" = x86_64 ] || echo "arm_setup.sh: warning: host is $(uname -m), not x86_64 (untested)" >&2
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "'$PYTHON -m pip' does not work; pass --python with a Python that has pip"

# 1. Host packages.
missing=()
for package in qemu-user debootstrap gcc binutils; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  apt-get update -qq || die "apt-get update failed (no network or broken sources?)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
else
  step "host packages already installed"
fi
# (Outputs captured first: grep -q closing the pipe early would fail under pipefail.)
qemu_help="$(qemu-aarch64 -h || true)"; qemu_cpus="$(qemu-aarch64 -cpu help || true)"
grep -q -- '-plugin' <<<"$qemu_help" \
  || die "this qemu-aarch64 ($(command -v qemu-aarch64)) has no TCG plugin support (-plugin)"
grep -q cortex-a76 <<<"$qemu_cpus" || die "qemu-aarch64 has no cortex-a76 CPU model"

# 2. The arm64 root with Python.
if [ -x "$ROOT/usr/bin/python3" ]; then
  step "arm64 root already at $ROOT"
else
  step "debootstrap --foreign arm64 $SUITE into $ROOT (about 1-3 minutes)"
  mkdir -p "$ROOT"
  debootstrap --arch=arm64 --foreign --variant=minbase --include=python3 \
    "$SUITE" "$ROOT" "$MIRROR" || die "debootstrap failed (see $ROOT/debootstrap/debootstrap.log)"
  step "unpacking the downloaded packages (no maintainer scripts are run)"
  for deb in "$ROOT"/var/cache/apt/archives/*.deb; do
    dpkg-deb -x "$deb" "$ROOT"
  done
  [ -x "$ROOT/usr/bin/python3" ] || die "no python3 in $ROOT after unpacking"
fi
mkdir -p "$ROOT/proc"  # arm_instruction_counts.py writes an ARM /proc/cpuinfo there
GUEST_PYTHON_VERSION="$(qemu-aarch64 -L "$ROOT" "$ROOT/usr/bin/python3" -c \
  'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" \
  || die "the arm64 Python does not run under qemu-aarch64"
echo "   arm64 Python $GUEST_PYTHON_VERSION, Debian $(cat "$ROOT/etc/debian_version")"

# 3. LiteRT and numpy wheels for aarch64.
if [ -z "$LITERT_VERSION" ]; then
  LITERT_VERSION="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("ai-edge-litert"))' 2>/dev/null)" \
    || die "ai-edge-litert is not installed in $PYTHON; pass --litert-version"
fi
if [ -d "$ROOT/opt/site/ai_edge_litert-$LITERT_VERSION.dist-info" ]; then
  step "ai-edge-litert $LITERT_VERSION already in $ROOT/opt/site"
else
  step "pip install (aarch64 wheels) ai-edge-litert==$LITERT_VERSION into $ROOT/opt/site"
  rm -rf "$ROOT/opt/site"
  platforms=()
  for tag in manylinux_2_28_aarch64 manylinux_2_27_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64; do
    platforms+=(--platform "$tag")
  done
  abi="cp${GUEST_PYTHON_VERSION/./}"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --target "$ROOT/opt/site" \
    "${platforms[@]}" --python-version "$GUEST_PYTHON_VERSION" --implementation cp --abi "$abi" \
    --only-binary=:all: "ai-edge-litert==$LITERT_VERSION" \
    || die "pip could not install aarch64 wheels of ai-edge-litert==$LITERT_VERSION for Python $GUEST_PYTHON_VERSION"
fi

# 4. The plugin.
mkdir -p "$PLUGIN_DIR"
if [ "$PLUGIN_DIR/arm_insn_plugin.so" -nt "$HERE/arm_insn_plugin.c" ]; then
  step "plugin already built: $PLUGIN_DIR/arm_insn_plugin.so"
else
  step "gcc $HERE/arm_insn_plugin.c -> $PLUGIN_DIR/arm_insn_plugin.so"
  gcc -O2 -Wall -shared -fPIC -o "$PLUGIN_DIR/arm_insn_plugin.so" "$HERE/arm_insn_plugin.c" \
    || die "the plugin did not compile"
fi

# 5. Smoke test.
step "smoke test: counting the instructions of 'import ai_edge_litert' on a cortex-a76"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
PYTHONPATH="$ROOT/opt/site" qemu-aarch64 -L "$ROOT" -cpu cortex-a76 \
  -plugin "$PLUGIN_DIR/arm_insn_plugin.so,out=$out" "$ROOT/usr/bin/python3" -c \
  'import os, ai_edge_litert.interpreter
try:
    os.lseek(-1, 0x4B4D4E000000 + 1, 0)
except OSError:
    pass' || die "the smoke test failed under qemu-aarch64"
grep -q '^marker 1 ' "$out" && grep -q '^total ' "$out" || die "the plugin wrote no counts: $(cat "$out")"
echo "   $(grep '^total ' "$out") instructions"
step "done: run  python benchmarks/arm_instruction_counts.py --root $ROOT --plugin $PLUGIN_DIR/arm_insn_plugin.so"
