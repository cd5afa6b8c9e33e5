#!/bin/sh
# setup.sh: install the Debian packages lnsc needs that are missing on this machine.
# Usage: scripts/setup.sh [--tests]   (--tests adds the oracles: python3-onnx, torch, numpy)
set -eu
PKGS="build-essential cmake pkg-config llvm-19-dev clang-19 lld-19 libprotobuf-c-dev \
protobuf-c-compiler libonnx-dev liblua5.4-dev zlib1g-dev dataset-fashion-mnist"
if [ "${1:-}" = "--tests" ]; then
  PKGS="$PKGS python3-onnx python3-torch python3-numpy"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
else
  echo "setup: all packages present"
fi
