# Shared by test_snapshot.sh and test_snapshot_fs.sh (sourced after lib.sh): VMs started in
# the background go into pids and are killed at exit with $work removed, and a QMP client.

# A VMM that died early must fail its checks, not kill the script on a write to its FIFO.
trap '' PIPE
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# qmp SOCKET OUT COMMAND...: negotiate and send the commands; replies and events in OUT (CR
# stripped). The input stays open until every command has its reply (a migrate takes a while).
qmp() {
	local sock=$1 out=$2 want=$(($# - 1)) i
	shift 2
	: >"$out.raw"
	{
		echo '{"execute":"qmp_capabilities"}'
		printf '%s\n' "$@"
		for ((i = 0; i < 1200; i++)); do
			[ "$(grep -c '"return"\|"error"' "$out.raw")" -ge $want ] && break
			sleep 0.1
		done
	} | timeout 180 socat - "UNIX-CONNECT:$sock" >"$out.raw"
	tr -d '\r' <"$out.raw" >"$out"
}

# reply_after_stop FILE: the reply that follows the STOP event (migrate's own).
reply_after_stop() { sed -n '/"event":"STOP"/{n;p}' "$1"; }
