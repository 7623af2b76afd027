#!/usr/bin/env bash
# Idempotent set-up: installs whatever is missing (Debian packages, npm packages from the
# lockfile), then configures and builds planetbridge in build/. Safe to run again and again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(
  g++ cmake make pkg-config                                     # toolchain
  libboost-dev libyaml-cpp-dev libdnnl-dev libcereal-dev        # plugins, suites, kernels, .entity
  nlohmann-json3-dev libcli11-dev zlib1g-dev catch2             # JSON, CLI, crc32, tests
  libcpp-httplib-dev libsqlite3-dev                             # planetbridge serve, the run catalog
  libssl-dev                                                    # SHA-256 of the run store's blobs (libcrypto)
  python3 python3-numpy python3-yaml python3-torch python3-sklearn   # the Python planets
  python3-torchvision                                           # the zoo suite's real models
  libopenblas0-openmp                                           # fast BLAS for Debian's torch
  chromium                                                      # the dashboard's headless browser test (skipped without)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Node planets (tfjs, jax-js): exactly the versions pinned in package-lock.json.
if [ -f package-lock.json ]; then
  if ! command -v npm >/dev/null; then
    echo "setup: npm not found; the tensorflow and jax planets will be reported as SKIP" >&2
  elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
