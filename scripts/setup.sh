#!/bin/sh
# setup.sh: install the Debian packages lnsc needs that are missing on this machine.
# Usage: scripts/setup.sh [--tests]
#   (no flag)  what building lnsc and training need: LLVM 19, clang/lld 19, protobuf-c, ONNX's
#              onnx.proto, Lua, zlib, Debian's Fashion-MNIST.
#   --tests    also the test oracles and AArch64 cross tools: python3-onnx, python3-torch,
#              python3-numpy, qemu-user, the aarch64 cross libc, arm64 zlib (multiarch), OpenBLAS.
set -eu
PKGS="build-essential cmake pkg-config llvm-19-dev clang-19 lld-19 libprotobuf-c-dev \
protobuf-c-compiler libonnx-dev liblua5.4-dev zlib1g-dev dataset-fashion-mnist"
TESTS=0
if [ "${1:-}" = "--tests" ]; then
  TESTS=1
  PKGS="$PKGS python3-onnx python3-torch python3-numpy qemu-user gcc-aarch64-linux-gnu \
libc6-dev-arm64-cross libopenblas-dev zlib1g-dev:arm64"
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
ADDED_ARCH=0
if [ "$TESTS" = 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: enabling the arm64 architecture (for zlib1g-dev:arm64)"
  $SUDO dpkg --add-architecture arm64
  ADDED_ARCH=1
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ] || [ "$ADDED_ARCH" = 1 ]; then
  echo "setup: installing$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
else
  echo "setup: all packages present"
fi
