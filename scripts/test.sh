#!/bin/sh
# test.sh: install what is missing, build with warnings as errors, run the whole test suite.
# Then the unit tests again in an ASan+UBSan build. CTest is the runner; exit code nonzero on
# any failure. Usage: scripts/test.sh  (from anywhere)
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLNSC_WERROR=ON >/dev/null
cmake --build build-test -j"$JOBS"
(cd build-test && ctest --output-on-failure -j"$JOBS" --timeout 1500)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLNSC_WERROR=ON -DLNSC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$JOBS" -L unit -E "test_lns$" --timeout 1500)
