#!/usr/bin/env bash
# containerd 1.6 driving containerd-shim-stratus-v2 (`ctr run --runtime io.containerd.stratus.v2`):
# one microVM per container, and a pod's containers in one microVM (docs/shim.md "Tasks",
# docs/pods.md). A containerd of the test's own
# (peers/containerd-private.sh: own root, state, sockets, network namespace), the local busybox
# image (peers/make-busybox-image.sh), the shim first on PATH, its libstratus state root and
# socket directory under the temp dir. With ctr:
#   1. run --rm echo hi prints hi (the rootfs is containerd's overlay mount, stdout its FIFO);
#      exit codes 0 and 3 are run's status; stdout and stderr stay apart.
#   2. a detached task: task ls RUNNING, ps, metrics, pause/resume (PAUSED, RUNNING), exec
#      refused while paused; task exec: exit 5 with stdout and stderr apart, 1 MiB of output
#      before the exit, a detached exec (its id taken while it runs, ps lists it, kill
#      --exec-id), a missing binary (ctr's error, exit 1), -t with a /dev/pts terminal and
#      ResizePty; an exec beyond the task's --memory-limit: 137 and TaskOOM on /tasks/oom
#      (`ctr events`), TaskExecAdded/Started; kill -s SIGKILL (STOPPED), task delete: 137.
#   3. run --rm with its stdin from a FIFO: cat sees the input, and its EOF once ctr's stdin
#      ends (CloseIO).
#   4. run -t (under script(1)): the init's stdout is a terminal, its exit status is run's,
#      ctr's window size reaches its pty (ResizePty).
#   5. the shim is killed: containerd's `shim delete` takes the orphaned VM down.
#   6. 20 containers started and removed in a row (run --rm /bin/true) leave nothing behind.
#   (sections 1-6: shim/single.sh)
#   7. a pod (shim/pod.sh): a sandbox (CRI's annotations) and members created with its
#      sandbox-id: one shim and one monitor (VM) for all; a member's echo hi, exit codes 3 and
#      137, TaskExit with the member's id; a member's pid namespace is its own unless
#      --with-ns names the sandbox's (ps in it sees the sandbox's sleep); a member of a member
#      refused with libstratus's line; exec, ps, metrics, pause and resume of a member while
#      the sandbox runs; run -t of a member; kill → 137; the sandbox killed: its running
#      member stops (137); members deleted, then the sandbox: no process, mount or state of
#      the pod left.
#   8. a pod's shim killed (shim/pod.sh): containerd's `shim delete` of the sandbox and of a
#      running member, at the same time, leave nothing behind.
#   9. networking (shim/net.sh): an `ip netns` namespace with a veth to a peer namespace;
#      `run --with-ns network:PATH` sees eth0 with the veth's MAC, address and default route,
#      pings the peer and its nc reaches a `nc -l` there; nothing left in the namespace.
#  10. a pod in that namespace (shim/net.sh): the peer pings the sandbox's VM, an exec in the
#      sandbox and a member see the same eth0, the member reaches the peer; one VM.
# Afterwards: no task or container; once containerd stops, no shim, no monitor, no mount under
# the temp dir, no shim socket, nothing under the shim's state root.
# usage: test_shim.sh SHIM VMLINUX INITRAMFS   (as root with /dev/kvm; skipped otherwise)
# STRATUS_SHIM_TEST_ONLY=single, pod or net runs only those sections (and the final checks).
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/peers/containerd-private.sh"
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

shim=$(abs "${1:?usage: test_shim.sh SHIM VMLINUX INITRAMFS}")
kernel=$(abs "${2:?usage: test_shim.sh SHIM VMLINUX INITRAMFS}")
initramfs=$(abs "${3:?usage: test_shim.sh SHIM VMLINUX INITRAMFS}")
need_file "$shim" containerd-shim-stratus-v2
need_file "$kernel" vmlinux
need_file "$initramfs" stratus-initramfs.cpio
[ "$(id -u)" = 0 ] || { echo "SKIP: containerd tests need root"; exit 77; }
for tool in containerd ctr unshare; do
	command -v $tool >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
need_kvm
only=${STRATUS_SHIM_TEST_ONLY:-}
case $only in
"" | single | pod | net) ;;
*) echo "FAIL: STRATUS_SHIM_TEST_ONLY: \"$only\" is not single, pod or net"; exit 1 ;;
esac

# containerd runs the shim from PATH and hands it its environment.
mkdir -p "$work/bin" "$work/s" "$work/shimroot"
ln -s "$shim" "$work/bin/containerd-shim-stratus-v2"
export PATH=$work/bin:$PATH
export STRATUS_KERNEL=$kernel STRATUS_INITRAMFS=$initramfs
export STRATUS_SHIM_ROOT=$work/shimroot STRATUS_SHIM_SOCKET_DIR=$work/s
image=localhost/stratus-busybox:latest
rt=io.containerd.stratus.v2

cleanup() {
	containerd_private_stop
	for p in $(peers_pids_mentioning "$work"); do kill -KILL "$p" 2>/dev/null; done
	for m in $(peers_mounts_under "$work"); do umount -l "$m" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
containerd_private_start "$work/containerd" "$rt" || { echo "FAIL: containerd"; exit 1; }
echo "# $(containerd --version | awk '{print $1, $3}'), in $work"

# run_out WHAT EXPECTED-STATUS EXPECTED-STDOUT CTR-ARGS...
run_out() {
	local what=$1 want_status=$2 want_out=$3 status
	shift 3
	c "$@" </dev/null >"$work/out" 2>"$work/err"
	status=$?
	expect_eq "$what: exit status" "$want_status" "$status"
	expect_eq "$what: output" "$want_out" "$(cat "$work/out")"
	[ "$status" = "$want_status" ] || sed 's/^/    | /' "$work/err" | tail -n 5
}

"$here/peers/make-busybox-image.sh" "$work/busybox.tar" --name "$image" >/dev/null ||
	{ echo "FAIL: make-busybox-image.sh"; exit 1; }
c images import "$work/busybox.tar" >"$work/import.out" 2>&1
expect_eq "images import: exit status" 0 $?

case $only in "" | single) source "$here/shim/single.sh" ;; esac
case $only in "" | pod) source "$here/shim/pod.sh" ;; esac
case $only in "" | net) source "$here/shim/net.sh" ;; esac

# ---- nothing left ---------------------------------------------------------------------------------
expect_eq "no task left" "" "$(c task ls -q)"
expect_eq "no container left" "" "$(c container ls -q)"
# Shims and their monitors (forked, not exec'd) carry -address .../containerd.sock.
left=$(peers_pids_mentioning "$ctd_sock")
expect_eq "no shim or monitor left" "" "$left"
for p in $left; do
	echo "    | $(ps -o pid=,ppid=,stat=,etime=,comm= -p "$p") $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-120)"
done
containerd_private_stop
sleep 1
# ours only: other tests on the host may run shims of their own meanwhile
expect_eq "no shim left" "" "$(peers_pids_mentioning "-address $ctd_sock")"
expect_eq "no mount left" "" "$(peers_mounts_under "$work")"
expect_eq "no shim socket left" "" "$(ls -A "$work/s")"
expect_eq "nothing under the shim's state root" "" "$(find "$work/shimroot" -mindepth 2)"
finish
