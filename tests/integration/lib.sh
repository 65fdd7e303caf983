# Helpers for the integration tests (sourced). Each test script checks many things and
# ends with the line "N passed, N failed"; it exits 0 only if nothing failed, and 77
# (ctest's skip) when the host has no usable /dev/kvm, except under CI=true, where that
# is a failure.
set -uo pipefail

passed=0
failed=0
work=$(mktemp -d /tmp/stratus-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

need_kvm() {
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then return 0; fi
	if [ "${CI:-}" = true ]; then
		echo "FAIL: /dev/kvm is missing or not accessible (CI=true: VM tests must run)"
		exit 1
	fi
	echo "SKIP: no usable /dev/kvm"
	exit 77
}

need_file() {
	if [ -f "$1" ]; then return 0; fi
	echo "FAIL: $2 not found at $1 (run ./dev.sh setup)"
	exit 1
}

pass() {
	passed=$((passed + 1))
	echo "ok - $*"
}

fail() {
	failed=$((failed + 1))
	echo "FAIL - $*"
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}

# expect_grep WHAT PATTERN FILE: an extended regex found in FILE
expect_grep() {
	if grep -Eq -- "$2" "$3"; then pass "$1"; else
		fail "$1: /$2/ not in $3:"
		sed 's/^/    | /' "$3" | tail -n 20
	fi
}

expect_no_grep() {
	if ! grep -Eq -- "$2" "$3"; then pass "$1"; else fail "$1: /$2/ unexpectedly in $3"; fi
}

# wait_for PATTERN FILE [SECONDS]: until an extended regex shows up in FILE (default 10 s).
wait_for() {
	local i
	for i in $(seq $((${3:-10} * 10))); do
		grep -Eq -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# expect_failure WHAT STATUS PATTERN COMMAND...: the command exits with STATUS and says
# PATTERN in exactly one line on stderr.
expect_failure() {
	local what=$1 want=$2 pattern=$3 status
	shift 3
	"$@" </dev/null >"$work/failure.out" 2>"$work/failure.err"
	status=$?
	expect_eq "$what: exit $want" "$want" "$status"
	expect_grep "$what: message" "$pattern" "$work/failure.err"
	expect_eq "$what: one line on stderr" 1 "$(wc -l <"$work/failure.err")"
}

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# Host cgroups (the host cgroup checks of test_cli.sh and shim/single.sh).
# cg_mount HIER: the mount point of a v1 controller's hierarchy, or of cgroup v2 ("")
cg_mount() {
	awk -v c="$1" '{ for (i = 7; $i != "-"; i++); t = $(i + 1); n = split($(i + 3), o, ",")
		if (c == "" && t == "cgroup2") { print $5; exit }
		if (c != "" && t == "cgroup") for (k = 1; k <= n; k++) if (o[k] == c) { print $5; exit } }' \
		/proc/self/mountinfo
}
# cg_of HIER FILE: the path of a hierarchy (a controller, or "" for cgroup v2) in a cgroup file
cg_of() { grep -E "^[0-9]+:$1:" "$2" | head -n 1 | cut -d: -f3-; }
