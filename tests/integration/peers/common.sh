# shellcheck shell=bash
# common.sh (sourced by the peer tests' helpers): small shared functions.

# peers_pids_mentioning TEXT: PIDs of the processes whose command line contains TEXT,
# other than this shell and its subshells.
peers_pids_mentioning() {
	local p cmd
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[[ $p == "$$" || $p == "$BASHPID" ]] && continue
		{ cmd=$(tr '\0' ' ' <"/proc/$p/cmdline"); } 2>/dev/null || continue
		[[ $cmd == *"$1"* ]] && echo "$p"
	done
	return 0
}

# peers_mounts_under DIR: mount points at or below DIR, deepest first.
peers_mounts_under() {
	awk -v d="$1" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# in_pty OUT COMMAND...: runs the command on a new 30x100 pty (script -e: its exit status),
# with the typed input from stdin; the transcript goes to OUT, without CRs and NULs (conmon
# and ctr write a NUL to the terminal, which its echo shows as ^@).
in_pty() {
	local out=$1 status
	shift
	SHELL=/bin/sh timeout -k 10 300 script -qefc "stty rows 30 cols 100; $(printf '%q ' "$@")" "$out.raw"
	status=$?
	tr -d '\r\0' <"$out.raw" | sed 's/\^@//g' >"$out"
	return $status
}
