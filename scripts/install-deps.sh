#!/usr/bin/env bash
# Installs the Debian packages vgpu builds with. The CUDA Toolkit (cuda.h, nvcc) is expected in
# its standard location (/usr/local/cuda); it is not a Debian package we can install here.
set -euo pipefail

packages=(build-essential cmake pkg-config python3
          libuv1-dev libprotobuf-c-dev protobuf-c-compiler libssl-dev
          liblz4-dev libzstd-dev libcriterion-dev
          libinih-dev libmicrohttpd-dev libjson-c-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "vgpu: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "vgpu: the CUDA Toolkit (nvcc, cuda.h) was not found in /usr/local/cuda." >&2
  echo "      Install it from https://developer.nvidia.com/cuda-downloads and run this again." >&2
  exit 1
fi
