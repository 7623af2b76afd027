#!/usr/bin/env bash
# Quick start (a): set up, build, and run the default suite live on every installed planet.
# Extra arguments go to `planetbridge run` (e.g. --planet pytorch --junit report.xml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
exec build/bin/planetbridge run config/suites/bedrock.yaml "$@"
