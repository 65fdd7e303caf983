# shellcheck shell=bash
# podman-private.sh (sourced): a rootful podman whose every piece of state lives under one
# directory, so a test neither sees nor touches the host's containers, images or networks.
#
#   podman_private_setup DIR RUNTIME   writes DIR/containers.conf, DIR/storage.conf and
#                                      DIR/podman (podman with all of them, and RUNTIME's
#                                      --root in /tmp/pmrt.* through DIR/bin/RUNTIME)
#   pm ARGS...                         podman with DIR's storage, runroot, cgroupfs, file
#                                      events and RUNTIME as the OCI runtime
#   podman_private_cleanup             removes every container and image, unmounts what is
#                                      left under DIR, ends conmon/runtime processes of DIR
#
# By hand: source this file, `podman_private_setup /tmp/pm /usr/sbin/runc`, then `pm images`
# or `/tmp/pm/podman images`.
# The storage driver is $PEERS_STORAGE_DRIVER (default overlay; vfs also works, slower).

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

podman_private_setup() {
	pm_dir=$1
	pm_runtime=$2
	local driver=${PEERS_STORAGE_DRIVER:-overlay}
	mkdir -p "$pm_dir"/{root,runroot,tmp,volumes,net,bin}
	# The runtime's --root: short, because podman's container IDs are 64 characters and a
	# runtime may keep sockets there (sun_path holds 107): /tmp/pmrt.XXXXXX, a link to it in
	# DIR/runtime.
	pm_runtime_root=$(mktemp -d /tmp/pmrt.XXXXXX)
	ln -s "$pm_runtime_root" "$pm_dir/runtime"
	cat >"$pm_dir/containers.conf" <<CONF
[containers]
# This host lacks CAP_SYS_RESOURCE: keep the rlimits at what it may set.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$pm_dir/events.log"
tmp_dir = "$pm_dir/tmp"
volume_path = "$pm_dir/volumes"
[network]
# CNI, as podman 4.3 on Debian 12 has it (netavark, where installed, would be preferred):
# peers/podman-net.sh writes CNI networks into the private config dir.
network_backend = "cni"
network_config_dir = "$pm_dir/net"
CONF
	cat >"$pm_dir/storage.conf" <<CONF
[storage]
driver = "$driver"
graphroot = "$pm_dir/root"
runroot = "$pm_dir/runroot"
CONF
	# An empty registries list: nothing is ever pulled from the network.
	printf 'unqualified-search-registries = []\n' >"$pm_dir/registries.conf"
	# DIR/podman: the private podman as a program (for script(1), or by hand).
	cat >"$pm_dir/podman" <<WRAPPER
#!/bin/sh
CONTAINERS_CONF=$pm_dir/containers.conf CONTAINERS_STORAGE_CONF=$pm_dir/storage.conf \\
CONTAINERS_REGISTRIES_CONF=$pm_dir/registries.conf exec podman --root $pm_dir/root \\
	--runroot $pm_dir/runroot --storage-driver $driver --cgroup-manager cgroupfs \\
	--events-backend file --tmpdir $pm_dir/tmp --runtime $pm_dir/bin/${pm_runtime##*/} "\$@"
WRAPPER
	chmod +x "$pm_dir/podman"
	# The runtime's state in pm_runtime_root. podman has no setting for the runtime's --root, and
	# its --runtime-flag is not passed on to the exit command (`podman container cleanup`,
	# which deletes the container): a wrapper of the runtime's name adds --root for every
	# caller.
	cat >"$pm_dir/bin/${pm_runtime##*/}" <<WRAPPER
#!/bin/sh
exec $pm_runtime --root $pm_runtime_root "\$@"
WRAPPER
	chmod +x "$pm_dir/bin/${pm_runtime##*/}"
}

# Every call is bounded ($PEERS_TIMEOUT seconds, default 300): a hung runtime fails a check
# instead of hanging the test. --foreground keeps a terminal usable by podman -it.
pm() {
	timeout --foreground -k 10 "${PEERS_TIMEOUT:-300}" "$pm_dir/podman" "$@"
}

# pm_leftover_pids: processes whose command line mentions the private directory (conmon,
# the runtime, its monitor), other than this shell.
pm_leftover_pids() {
	peers_pids_mentioning "$pm_dir"
}

# pm_leftover_mounts: mount points under the private directory
pm_leftover_mounts() {
	peers_mounts_under "$pm_dir"
}

podman_private_cleanup() {
	[[ -n ${pm_dir:-} && -d $pm_dir ]] || return 0
	PEERS_TIMEOUT=120 pm rm -af -t 0 >/dev/null 2>&1
	PEERS_TIMEOUT=60 pm rmi -af >/dev/null 2>&1
	local p m
	for p in $(pm_leftover_pids); do kill -KILL "$p" 2>/dev/null; done
	for m in $(pm_leftover_mounts); do umount -l "$m" 2>/dev/null; done
	[[ -n ${pm_runtime_root:-} ]] && rm -rf "$pm_runtime_root"
	return 0
}
