#!/bin/bash
# A test that stands in for tests CMake could not register because a tool
# was missing at configure time:
#
#   missing_tool.sh TOOL WHAT
#
# It says which tool and which tests, and exits 77 (ctest: skipped), or 1
# when MIRRORD_TRACE_MUST_WORK=1 (CI), where an environment skip is a
# failure. Install the tool (scripts/deps) and re-run cmake to get the real
# tests.
tool=${1:?usage: missing_tool.sh TOOL WHAT}
what=${2:?usage: missing_tool.sh TOOL WHAT}
if [ "${MIRRORD_TRACE_MUST_WORK:-0}" = 1 ]; then
	echo "FAIL: '$tool' was not found when cmake configured this build, so $what are missing (MIRRORD_TRACE_MUST_WORK=1 forbids skipping); run scripts/deps and re-run cmake"
	exit 1
fi
echo "SKIP: '$tool' was not found when cmake configured this build: no $what (run scripts/deps and re-run cmake)"
exit 77
