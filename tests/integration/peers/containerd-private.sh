# shellcheck shell=bash
# containerd-private.sh (sourced): a containerd 1.6 of the test's own, all of its state under
# one directory, in a network namespace of its own, driven with ctr.
#
#   containerd_private_start DIR RUNTIME   writes DIR/config.toml, starts containerd under
#                                          `unshare -n`, waits for its socket (0, or 1 with
#                                          the log's tail on stderr)
#   c ARGS...                              ctr on DIR's socket and the "peers" namespace
#   cr ARGS...                             `ctr run` with RUNTIME as the runc binary and
#                                          DIR/runc as its --root (ctd_run_args)
#   containerd_private_stop                kills and deletes every task and container, stops
#                                          containerd, ends leftover shims (and removes their
#                                          sockets), unmounts DIR
#
# The runtime: containerd 1.6 has options.BinaryName only in the CRI plugin's runtime table,
# which applies to CRI (kubelet) containers alone; ctr hands the io.containerd.runc.v2 shim
# the same runc option (BinaryName) with --runc-binary. So the CRI plugin stays disabled and
# every `ctr run` passes --runc-binary RUNTIME (and --runc-root DIR/runc); the shim keeps
# them for the task's life (exec, kill, delete).
# By hand: source this file, `containerd_private_start /tmp/ctd /usr/sbin/runc`, `c images ls`.

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

containerd_private_start() {
	ctd_dir=$1
	ctd_runtime=$2
	ctd_sock=$ctd_dir/containerd.sock
	# The runc shim's default runtime root is /run/containerd/runc/<namespace>: keep it here.
	ctd_run_args=(--runc-binary "$ctd_runtime" --runc-root "$ctd_dir/runc")
	mkdir -p "$ctd_dir"/{root,state,runc}
	cat >"$ctd_dir/config.toml" <<CONF
version = 2
root = "$ctd_dir/root"
state = "$ctd_dir/state"
disabled_plugins = [
	"io.containerd.grpc.v1.cri",
	"io.containerd.internal.v1.opt",
	"io.containerd.internal.v1.tracing",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
]

[grpc]
address = "$ctd_sock"

[ttrpc]
address = "$ctd_sock.ttrpc"

[debug]
address = ""
level = "info"

[metrics]
address = ""

[plugins."io.containerd.monitor.v1.cgroups"]
no_prometheus = true
CONF
	unshare -n containerd --config "$ctd_dir/config.toml" >"$ctd_dir/containerd.log" 2>&1 &
	ctd_pid=$!
	local i
	for i in $(seq 600); do
		if [ -S "$ctd_sock" ] && ctr -a "$ctd_sock" version >/dev/null 2>&1; then return 0; fi
		kill -0 "$ctd_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "containerd did not start:" >&2
	tail -n 20 "$ctd_dir/containerd.log" >&2
	return 1
}

# Every call is bounded ($PEERS_TIMEOUT seconds, default 300). --foreground keeps a terminal
# usable by ctr run -t.
c() {
	timeout --foreground -k 10 "${PEERS_TIMEOUT:-300}" ctr -a "$ctd_sock" -n peers "$@"
}

# task_status ID: RUNNING, PAUSED, STOPPED, ... from task ls
task_status() { c task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }

# wait_status ID STATUS [SECONDS]: until task_status says STATUS (default 60 s); 1 if never
wait_status() {
	local i
	for i in $(seq $((${3:-60} * 2))); do
		[ "$(task_status "$1")" = "$2" ] && return 0
		sleep 0.5
	done
	return 1
}

cr() {
	c run "${ctd_run_args[@]}" "$@"
}

# ctd_shim_socket ID: the socket containerd 1.6 gives the shim of task ID (its path is fixed
# under /run/containerd/s/: the sha256 of "<containerd address>/<namespace>/<ID>").
ctd_shim_socket() {
	echo "/run/containerd/s/$(printf '%s' "$ctd_sock/peers/$1" | sha256sum | cut -d' ' -f1)"
}

# ctd_leftover_pids: shims and runtime processes of this containerd (their command lines
# name its socket or state directory), other than containerd itself.
ctd_leftover_pids() {
	peers_pids_mentioning "$ctd_dir" | grep -vx "${ctd_pid:-none}"
	return 0
}

containerd_private_stop() {
	[[ -n ${ctd_dir:-} && -d $ctd_dir ]] || return 0
	local id p m ids=
	if [[ -n ${ctd_pid:-} ]] && kill -0 "$ctd_pid" 2>/dev/null; then
		ids=$(PEERS_TIMEOUT=30 c container ls -q 2>/dev/null)
		for id in $(PEERS_TIMEOUT=30 c task ls -q 2>/dev/null); do
			PEERS_TIMEOUT=60 c task delete -f "$id" >/dev/null 2>&1
		done
		for id in $(PEERS_TIMEOUT=30 c container ls -q 2>/dev/null); do
			PEERS_TIMEOUT=30 c container delete "$id" >/dev/null 2>&1
		done
		kill -TERM "$ctd_pid" 2>/dev/null
		for p in $(seq 100); do kill -0 "$ctd_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$ctd_pid" 2>/dev/null
		wait "$ctd_pid" 2>/dev/null
	fi
	for p in $(ctd_leftover_pids); do kill -KILL "$p" 2>/dev/null; done
	for m in $(peers_mounts_under "$ctd_dir"); do umount -l "$m" 2>/dev/null; done
	# A killed shim leaves its socket: those of the containers that were still there.
	for id in $ids; do rm -f "$(ctd_shim_socket "$id")"; done
	return 0
}
