#!/usr/bin/env bash
# virtio-fs devices in snapshots (docs/snapshots.md "virtio-fs", the VMM half of VM
# templates). A Linux guest boots with two slots (tags rootfs and m1: no source=, no
# process) and one real share (m0, never mounted) and is snapshotted with QMP migrate. Two
# clones are restored from that one file at the same time, into shared memory (they have
# shares, so their RAM is a memfd the shares' processes map): clone a gives the rootfs slot
# and m0 directories, clone b gives rootfs and m1 directories and turns the m0 share into a
# slot. In each, the guest mounts its shares, reads the host's file, writes one the host
# then finds, and a mount of a slot fails at once (ENODEV, no hang). Refused: migrate of a
# clone whose share is mounted (naming the device, no file left), a restore with another tag
# at a position. A template of slots alone restores MAP_PRIVATE (no copy).
# usage: test_snapshot_fs.sh STRATUS_VMM VMLINUX
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/console.sh"
vmm=$1
kernel=$2
here=$(cd "$(dirname "$0")" && pwd)
need_file "$vmm" stratus-vmm
need_file "$kernel" "the guest kernel (guest-kernel-config/build-kernel.sh)"
need_kvm
command -v socat >/dev/null || { echo "FAIL: socat not found (packaging/deps.txt)"; exit 1; }

source "$here/snapshot/common.sh"
# children PID: the names of the VMM's child processes (PID is its timeout wrapper).
children() { ps -o comm= --ppid "$(pgrep -P "$1" | head -n 1)" | sort | tr '\n' ' '; }

"$here/initramfs/make-test-initramfs.sh" --add "$here/snapshot/guest-snap.sh:/tests/snap.sh" \
	--applets "mkdir ls sync umount" "$work/snap.cpio" >/dev/null ||
	{ fail "build the test initramfs"; finish; exit; }
mkdir -p "$work/tmpl-m0" "$work/a-root" "$work/a-m0" "$work/b-root" "$work/b-m1" "$work/other"
echo "rootfs of clone a" >"$work/a-root/hello"
echo "m0 of clone a" >"$work/a-m0/hello"
echo "rootfs of clone b" >"$work/b-root/hello"
echo "m1 of clone b" >"$work/b-m1/hello"

# fs ROOT M0 M1: the three virtio-fs devices, each a share of the directory given or a slot.
fs() {
	local id tag dir i=0
	for dir in "$@"; do
		tag=$(echo "rootfs m0 m1" | cut -d' ' -f$((i + 1)))
		id=fs$i
		if [ "$dir" = - ]; then
			echo -device "virtio-fs-device,id=$id,tag=$tag"
		else
			echo -device "virtio-fs-device,id=$id,tag=$tag,source=$dir"
		fi
		i=$((i + 1))
	done
}

# ---- the template: slots rootfs and m1, the share m0 never mounted ----
mkfifo "$work/t.in"
: >"$work/t.raw"
# shellcheck disable=SC2046
timeout 900 "$vmm" -kernel "$kernel" -initrd "$work/snap.cpio" -m 256 -smp 1 -D \
	$(fs - "$work/tmpl-m0" -) -qmp "unix:$work/t.qmp,server,nowait" \
	-append "quiet stratus_test_quick stratus_test_run=/tests/snap.sh stratus_test=poweroff" \
	<"$work/t.in" >"$work/t.raw" 2>"$work/t.log" &
tmpl=$!
pids+=($tmpl)
exec 3>"$work/t.in"
if ! guest_wait "$work/t.raw" "$work/t.out" $tmpl '^SNAP ready' 600; then
	fail "template: the console shell did not start"
	cat "$work/t.log" >&2
	finish
	exit
fi
expect_eq "template: one process, for the share m0 only (slots fork none)" "fs-fs1 " \
	"$(children $tmpl)"
expect_grep "template: slots logged as such" "fs0: tag 'rootfs' is a slot" "$work/t.log"
qmp "$work/t.qmp" "$work/t-migrate.qmp" \
	"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"file:$work/tmpl.snap\"}}" \
	'{"execute":"quit"}'
exec 3>&-
wait $tmpl
expect_eq "template: migrate then quit: exit 0" 0 "$?"
expect_eq "template: migrate with slots and an unused share succeeds" '{"return":{}}' \
	"$(reply_after_stop "$work/t-migrate.qmp")"
[ -f "$work/tmpl.snap" ] || { fail "template: no snapshot file"; finish; exit; }

# ---- refused before anything runs: another tag at a position ----
# shellcheck disable=SC2046
expect_failure "restore with another tag at -device 2" 1 \
	"-device 2 \(virtio-fs 'fs1'\): tag 'data', but the snapshot .*tmpl.snap has tag 'm0' at this position" \
	"$vmm" -incoming "file:$work/tmpl.snap" -m 256 -smp 1 -qmp "unix:$work/x.qmp,server,nowait" \
	-device "virtio-fs-device,id=fs0,tag=rootfs,source=$work/a-root" \
	-device "virtio-fs-device,id=fs1,tag=data,source=$work/other" -device virtio-fs-device,id=fs2,tag=m1

# ---- two clones from the one file at once, into shared memory ----
start_clone() { # start_clone NAME ROOT M0 M1
	local name=$1
	shift
	mkfifo "$work/$name.in"
	: >"$work/$name.raw"
	# shellcheck disable=SC2046
	timeout 600 "$vmm" -incoming "file:$work/tmpl.snap" -m 256 -smp 1 -D $(fs "$@") \
		-qmp "unix:$work/$name.qmp,server,nowait" \
		<"$work/$name.in" >"$work/$name.raw" 2>"$work/$name.log" &
	pids+=($!)
	eval "clone_$name=$!"
}
start_clone a "$work/a-root" "$work/a-m0" -
start_clone b "$work/b-root" - "$work/b-m1"
exec 4>"$work/a.in" 5>"$work/b.in"
cat >&4 <<'EOF2'
mkdir -p /mnt/root /mnt/m0 /mnt/m1
mount -t virtiofs rootfs /mnt/root && echo SNAP mount-root=ok
echo SNAP read-root=$(cat /mnt/root/hello)
mount -t virtiofs m0 /mnt/m0 && echo SNAP mount-m0=ok
echo SNAP read-m0=$(cat /mnt/m0/hello)
echo "written by clone a" >/mnt/root/from-guest && sync && echo SNAP write=ok
mount -t virtiofs m1 /mnt/m1 2>/dev/null; ls /mnt/m1 >/dev/null 2>&1; echo SNAP slot-ls=$?
echo SNAP done
EOF2
cat >&5 <<'EOF2'
mkdir -p /mnt/root /mnt/m0 /mnt/m1
mount -t virtiofs rootfs /mnt/root && echo SNAP mount-root=ok
echo SNAP read-root=$(cat /mnt/root/hello)
mount -t virtiofs m1 /mnt/m1 && echo SNAP mount-m1=ok
echo SNAP read-m1=$(cat /mnt/m1/hello)
echo "written by clone b" >/mnt/m1/from-guest && sync && echo SNAP write=ok
mount -t virtiofs m0 /mnt/m0 2>/dev/null; ls /mnt/m0 >/dev/null 2>&1; echo SNAP slot-ls=$?
echo SNAP done
EOF2
for clone in a b; do
	eval "pid=\$clone_$clone"
	guest_wait "$work/$clone.raw" "$work/$clone.out" "$pid" '^SNAP done' 300 ||
		fail "clone $clone: the commands did not finish (log: $(tail -n 3 "$work/$clone.log"))"
done
out_a=$work/a.out
out_b=$work/b.out
for clone in a b; do
	out=$work/$clone.out
	expect_grep "clone $clone: restored, not booted" 'VM restored from .*tmpl.snap' "$work/$clone.log"
	expect_grep "clone $clone: guest memory copied into shared memory" \
		'guest memory: [0-9.]+ MiB copied from .*tmpl.snap into shared memory in [0-9.]+ ms' \
		"$work/$clone.log"
	expect_grep "clone $clone: rootfs slot mounted with its new source" '^SNAP mount-root=ok$' "$out"
	expect_grep "clone $clone: reads the host's file" "^SNAP read-root=rootfs of clone $clone\$" "$out"
	expect_grep "clone $clone: write" '^SNAP write=ok$' "$out"
	expect_grep "clone $clone: a slot's mount fails at once" '^SNAP slot-ls=[1-9][0-9]*$' "$out"
	expect_no_grep "clone $clone: no device needed a reset" 'needs reset' "$work/$clone.log"
done
expect_grep "clone a: the template's share m0, now another directory" '^SNAP read-m0=m0 of clone a$' "$out_a"
expect_grep "clone b: the template's slot m1 with a source" '^SNAP read-m1=m1 of clone b$' "$out_b"
expect_eq "clone a: its write is on the host" "written by clone a" "$(cat "$work/a-root/from-guest" 2>&1)"
expect_eq "clone b: its write is on the host" "written by clone b" "$(cat "$work/b-m1/from-guest" 2>&1)"
expect_eq "clone a: processes for its two shares" "fs-fs0 fs-fs1 " "$(children "$clone_a")"
expect_eq "clone b: processes for its two shares" "fs-fs0 fs-fs2 " "$(children "$clone_b")"
[ ! -e "$work/tmpl-m0/from-guest" ] && [ -z "$(ls "$work/tmpl-m0")" ] &&
	pass "the template's share is untouched" || fail "the template's share changed"

# ---- migrate of a VM whose share is mounted: refused, naming the device ----
qmp "$work/a.qmp" "$work/a-migrate.qmp" \
	"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"file:$work/a.snap\"}}" \
	'{"execute":"query-migrate"}'
expect_grep "migrate with a mounted share: refused, naming the device" \
	"virtio-fs device 'fs0' \(tag 'rootfs'\): the guest has used the share" "$work/a-migrate.qmp"
expect_grep "query-migrate: failed" '"status":"failed"' "$work/a-migrate.qmp"
[ ! -e "$work/a.snap" ] && [ -z "$(ls "$work" | grep 'a\.snap\.')" ] &&
	pass "refused migrate: no file left" || fail "refused migrate left a file"
qmp "$work/a.qmp" "$work/a-cont.qmp" '{"execute":"cont"}'
echo 'echo SNAP after=$(cat /mnt/root/hello)' >&4
guest_wait "$work/a.raw" "$work/a.out" "$clone_a" '^SNAP after=' 120
expect_grep "clone a: runs on after the refused migrate" '^SNAP after=rootfs of clone a$' "$work/a.out"

echo 'poweroff -f' >&4
echo 'poweroff -f' >&5
exec 4>&- 5>&-
for clone in a b; do
	eval "pid=\$clone_$clone"
	wait "$pid"
	expect_eq "clone $clone: poweroff, exit 0" 0 "$?"
done

# ---- a clone of slots only: private copy-on-write mapping, no copy, no process ----
mkfifo "$work/s.in"
: >"$work/s.raw"
# shellcheck disable=SC2046
timeout 600 "$vmm" -incoming "file:$work/tmpl.snap" -m 256 -smp 1 -D $(fs - - -) \
	-qmp "unix:$work/s.qmp,server,nowait" <"$work/s.in" >"$work/s.raw" 2>"$work/s.log" &
slots=$!
pids+=($slots)
exec 6>"$work/s.in"
echo 'echo SNAP slots-only=ok' >&6
guest_wait "$work/s.raw" "$work/s.out" "$slots" '^SNAP slots-only=' 120 ||
	fail "slots-only clone: the shell did not answer"
expect_eq "slots-only clone: no process" "" "$(children $slots)"
expect_no_grep "slots-only clone: mapped, not copied" 'into shared memory' "$work/s.log"
echo 'poweroff -f' >&6
exec 6>&-
wait $slots
expect_eq "slots-only clone: exit 0" 0 "$?"

finish
