#!/usr/bin/env bash
# Quick start (b): set up, build, and run every test (C++ unit tests, capture tests, live suites).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
