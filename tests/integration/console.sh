# Sourced by tests and benchmarks that drive a running guest through its console.
# guest_wait RAW OUT PID REGEX SECONDS: until the guest console RAW (as the VMM wrote it,
# CRLF) shows a line matching REGEX; OUT is kept as the CR-stripped copy. Fails at once if
# the VMM (PID) has exited, or after SECONDS.
guest_wait() {
	local raw=$1 out=$2 pid=$3 regex=$4 seconds=$5 i
	for ((i = 0; i < seconds * 10; i++)); do
		tr -d '\r' <"$raw" >"$out"
		grep -Eq "$regex" "$out" && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
