#!/usr/bin/env bash
# Builds Kiln and runs the whole test suite (unit tests, then the conformance suite on every
# available backend; Vulkan with the validation layer on). Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
KILN_VK_VALIDATION=1 ctest --preset default "$@"
