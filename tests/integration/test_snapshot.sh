#!/usr/bin/env bash
# VM snapshots (docs/snapshots.md). The freestanding stub counts on its console (action
# 'c'): QMP migrate snapshots it mid-count (the VM stays paused, STOP event, query-migrate
# says completed), cont resumes the original, and two clones restored from the one file at
# the same time carry on from exactly where it stopped and finish with the right sums.
# Truncated, edited, foreign-machine and missing snapshots are refused with one line and
# exit status 1. Then the Linux guest, snapshotted after boot with virtio-blk, -rng and
# -vsock, restored twice at once: the console shell still runs commands, the clock was
# moved on to the host's time, each clone reads its own bytes from /dev/hwrng, blk reads
# and writes land in each clone's own image, and vsock: TRANSPORT_RESET made the guest drop
# the connection that was open at the snapshot, and a new one reaches the guest's listener.
# usage: test_snapshot.sh STRATUS_VMM STUB VMLINUX
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/console.sh"
vmm=$1
stub=$2
kernel=$3
here=$(cd "$(dirname "$0")" && pwd)
need_file "$vmm" stratus-vmm
need_file "$stub" "the test stub"
need_kvm
command -v socat >/dev/null || { echo "FAIL: socat not found (packaging/deps.txt)"; exit 1; }

source "$here/snapshot/common.sh"

# complete FILE: the file without a last line cut short (no newline yet).
complete() { if [ -n "$(tail -c 1 "$1")" ]; then sed '$d' "$1"; else cat "$1"; fi; }

# count_lines FILE: the "stub: count=N" values, one per line (partial lines dropped).
count_lines() { sed -n 's/^stub: count=\([0-9]*\)$/\1/p' "$1"; }

# ---- the stub, mid-workload ----
mkfifo "$work/src.in"
timeout 300 "$vmm" -kernel "$stub" -boot-entry linux64 -append c \
	-qmp "unix:$work/src.qmp,server,nowait" <"$work/src.in" >"$work/src.out" 2>"$work/src.log" &
src=$!
pids+=($src)
exec 3>"$work/src.in"
wait_for '^stub: count=20$' "$work/src.out" 60 || fail "stub: the workload did not start"
# Once migrate has answered the VM is paused and writes no more: this copy is the cut.
qmp "$work/src.qmp" "$work/migrate.qmp" \
	"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"file:$work/stub.snap\"}}" \
	'{"execute":"query-migrate"}' '{"execute":"query-status"}'
cp "$work/src.out" "$work/src.at-snapshot"
expect_grep "migrate: STOP event" '"event":"STOP"' "$work/migrate.qmp"
expect_eq "migrate: success" '{"return":{}}' "$(reply_after_stop "$work/migrate.qmp")"
expect_grep "query-migrate: completed" '^\{"return":\{"status":"completed","total-time":[0-9]+\}\}$' \
	"$work/migrate.qmp"
expect_grep "the VM stays paused after migrate" '"status":"paused"' "$work/migrate.qmp"
expect_grep "snapshot logged" 'snapshot written to .*stub.snap in [0-9.]+ ms' "$work/src.log"
sleep 0.5
expect_eq "paused: no console output" "$(wc -c <"$work/src.at-snapshot")" "$(wc -c <"$work/src.out")"
complete "$work/src.at-snapshot" >"$work/src.complete"
last=$(count_lines "$work/src.complete" | tail -n 1)

# cont resumes the original, which then finishes its own count correctly.
qmp "$work/src.qmp" "$work/cont.qmp" '{"execute":"cont"}'
expect_grep "cont: RESUME event" '"event":"RESUME"' "$work/cont.qmp"
wait_for "^stub: count=$((last + 20))\$" "$work/src.out" 60
printf q >&3
exec 3>&-
wait $src
expect_eq "original after cont: exit 0" 0 "$?"
expect_grep "original after cont: sums right" '^stub: sums_ok=1$' "$work/src.out"

# Two clones from the one file at the same time; each continues where the snapshot was.
for clone in a b; do
	mkfifo "$work/$clone.in"
	timeout 300 "$vmm" -incoming "file:$work/stub.snap" -qmp "unix:$work/$clone.qmp,server,nowait" \
		<"$work/$clone.in" >"$work/$clone.out" 2>"$work/$clone.log" &
	pids+=($!)
	eval "clone_$clone=$!"
done
exec 4>"$work/a.in" 5>"$work/b.in"
wait_for "^stub: count=$((last + 30))\$" "$work/a.out" 60
wait_for "^stub: count=$((last + 30))\$" "$work/b.out" 60
printf q >&4
printf q >&5
exec 4>&- 5>&-
for clone in a b; do
	eval "pid=\$clone_$clone"
	wait "$pid"
	expect_eq "clone $clone: exit 0" 0 "$?"
	expect_grep "clone $clone: restored, not booted" 'VM restored from .*stub.snap' "$work/$clone.log"
	expect_no_grep "clone $clone: no boot banner" 'hello' "$work/$clone.out"
	# The original's output up to the cut, then the clone's: one unbroken count.
	cat "$work/src.at-snapshot" "$work/$clone.out" >"$work/$clone.joined"
	first=$(count_lines "$work/$clone.out" | head -n 1)
	total=$(sed -n 's/^stub: total=//p' "$work/$clone.out")
	expect_eq "clone $clone: counting resumes right after the snapshot" $((last + 1)) \
		"$(count_lines "$work/$clone.joined" | sed -n "$((last + 1))p")"
	expect_eq "clone $clone: every count once, in order" "$(seq 1 "$total" | tr '\n' ' ')" \
		"$(count_lines "$work/$clone.joined" | tr '\n' ' ')"
	expect_grep "clone $clone: sums over the snapshot are right" '^stub: sums_ok=1$' \
		"$work/$clone.out"
	[ -n "$first" ] && [ "$total" -gt "$last" ] && pass "clone $clone: counted on ($first..$total)" ||
		fail "clone $clone: counted on ($first..$total)"
done

# Refused, with one line and exit status 1: nothing runs.
size=$(stat -c %s "$work/stub.snap")
head -c $((size - 4096)) "$work/stub.snap" >"$work/truncated.snap"
expect_failure "truncated snapshot" 1 'truncated.snap: snapshot is truncated' \
	"$vmm" -incoming "file:$work/truncated.snap"
cp "$work/stub.snap" "$work/edited.snap"
printf '\xff' | dd of="$work/edited.snap" bs=1 seek=$((4096 + 200)) conv=notrunc 2>/dev/null
expect_failure "edited state" 1 'edited.snap: snapshot state is damaged \(bad checksum\)' \
	"$vmm" -incoming "file:$work/edited.snap"
cp "$work/stub.snap" "$work/edited.snap"
printf '\x07' | dd of="$work/edited.snap" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_failure "edited header" 1 'edited.snap: snapshot header is damaged' \
	"$vmm" -incoming "file:$work/edited.snap"
head -c 8192 /dev/urandom >"$work/junk.snap"
expect_failure "not a snapshot" 1 'junk.snap: not a stratus snapshot' \
	"$vmm" -incoming "file:$work/junk.snap"
expect_failure "other memory size" 1 '-m: 256 MiB, but the snapshot .* has 128 MiB' \
	"$vmm" -incoming "file:$work/stub.snap" -m 256
expect_failure "other vCPU count" 1 '-smp: 2 vCPUs, but the snapshot .* has 1' \
	"$vmm" -incoming "file:$work/stub.snap" -smp 2
# The original had -qmp, hence virtio-blk hotplug slots (docs/vmm.md): a clone without
# the same devices is refused.
expect_failure "other devices" 1 '-device: 0 devices, but the snapshot .* has [1-9]' \
	"$vmm" -incoming "file:$work/stub.snap"
expect_failure "another device type" 1 '-device 1: another device type than in the snapshot' \
	"$vmm" -incoming "file:$work/stub.snap" -qmp "unix:$work/x.qmp,server,nowait" \
	-machine microvm,blk-slots=3 -device virtio-rng-device
expect_failure "missing snapshot" 1 'missing.snap: cannot open the snapshot' \
	"$vmm" -incoming "file:$work/missing.snap"
expect_failure "-incoming without file:" 2 "-incoming: 'tcp:1234' must be file:PATH" \
	"$vmm" -incoming tcp:1234
# A failed migrate says why and leaves nothing behind.
timeout 60 "$vmm" -kernel "$stub" -append i -qmp "unix:$work/idle.qmp,server,nowait" \
	</dev/null >/dev/null 2>"$work/idle.log" &
pids+=($!)
wait_for 'starting' "$work/idle.log" 10
head -c 1M /dev/zero >"$work/hot.img"
qmp "$work/idle.qmp" "$work/bad-migrate.qmp" \
	"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"file:$work/no/such/dir/x.snap\"}}" \
	'{"execute":"query-migrate"}' '{"execute":"migrate","arguments":{"uri":"tcp:1:2"}}' \
	"{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"raw\",\"node-name\":\"hot\",\"file\":{\"driver\":\"file\",\"filename\":\"$work/hot.img\"}}}" \
	'{"execute":"device_add","arguments":{"driver":"virtio-blk-mmio","id":"hotdisk","drive":"hot"}}' \
	"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"file:$work/hot.snap\"}}" \
	'{"execute":"quit"}'
expect_grep "migrate to a bad path: error" '"error":\{"class":"GenericError","desc":"snapshot: cannot create' \
	"$work/bad-migrate.qmp"
expect_grep "query-migrate: failed, with why" '"status":"failed".*"error-desc":"snapshot: cannot create' \
	"$work/bad-migrate.qmp"
expect_grep "migrate: only file: URIs" "only file:PATH is supported" "$work/bad-migrate.qmp"
expect_grep "migrate with a hot-added disk: refused" \
	"device 'hotdisk' is hot-added; device_del it before a snapshot" "$work/bad-migrate.qmp"
[ ! -e "$work/hot.snap" ] && [ -z "$(ls "$work" | grep 'snap\.')" ] &&
	pass "failed migrates leave no file behind" || fail "failed migrates left files: $(ls "$work")"

# virtio-fs devices in snapshots (slots, shares, shared memory): test_snapshot_fs.sh.

# ---- the Linux guest ----
if [ ! -f "$kernel" ]; then
	fail "the guest kernel not found at $kernel (run ./dev.sh setup)"
	finish
	exit
fi
gcc -static -O2 -o "$work/vsock_guest" "$here/vsock/vsock_guest.c" ||
	{ fail "build the static vsock guest program"; finish; exit; }
"$here/initramfs/make-test-initramfs.sh" --add "$here/snapshot/guest-snap.sh:/tests/snap.sh" \
	--add "$work/vsock_guest:/tests/vsock_guest" \
	--applets "head sha256sum date dd cut" "$work/snap.cpio" >/dev/null
head -c 4M /dev/urandom >"$work/disk.img"
devices() { # devices NAME: the machine, with NAME's own image and vsock socket
	echo -m 256 -smp 1 -drive "id=d0,file=$work/$1.img" -device virtio-blk-device,drive=d0,id=blk0 \
		-device virtio-rng-device,id=rng0 \
		-device "vhost-vsock-device,id=vsock0,guest-cid=3,uds-path=$work/$1.vsock"
}
mkfifo "$work/linux.in"
: >"$work/linux.raw"
# shellcheck disable=SC2046
timeout 900 "$vmm" -kernel "$kernel" -initrd "$work/snap.cpio" $(devices disk) -D \
	-qmp "unix:$work/linux.qmp,server,nowait" \
	-append "quiet stratus_test_quick stratus_test_run=/tests/snap.sh stratus_test=poweroff" \
	<"$work/linux.in" >"$work/linux.raw" 2>"$work/linux.log" &
linux=$!
pids+=($linux)
exec 3>"$work/linux.in"
if ! guest_wait "$work/linux.raw" "$work/linux.out" $linux '^SNAP ready' 600; then
	fail "Linux guest: the console shell did not start"
	finish
	exit
fi
# An echo server on vsock port 1234 in the guest (the agent's stand-in), and a host
# connection to it that is open when the snapshot is taken: it cannot survive in a clone.
echo '/tests/vsock_guest serve 1234 &' >&3
echo 'echo SNAP serving' >&3
guest_wait "$work/linux.raw" "$work/linux.out" $linux '^SNAP serving' 120
for ((i = 0; i < 50; i++)); do # the server may still be starting: CONNECT again until OK
	coproc OLD { exec socat - "UNIX-CONNECT:$work/disk.vsock"; }
	printf 'CONNECT 1234\nbefore' >&"${OLD[1]}"
	IFS= read -r -t 10 ok <&"${OLD[0]}" && break
	kill "$OLD_PID" 2>/dev/null
	wait "$OLD_PID" 2>/dev/null
	sleep 0.2
done
IFS= read -r -t 30 -N 6 echoed <&"${OLD[0]}"
expect_eq "Linux: vsock echo before the snapshot" "before" "$echoed"
qmp "$work/linux.qmp" "$work/linux-migrate.qmp" \
	"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"file:$work/linux.snap\"}}" \
	'{"execute":"quit"}'
exec 3>&-
wait $linux
expect_eq "Linux: migrate then quit: exit 0" 0 "$?"
expect_eq "Linux: migrate succeeded" '{"return":{}}' "$(reply_after_stop "$work/linux-migrate.qmp")"
# Let the snapshot age (10 s), so a clock that was not moved on would show it. (Each clone reads
# /dev/hwrng twice below: the first read may return the up to 64 bytes Linux's virtio_rng
# fetched before the snapshot, the same in every clone; see docs/snapshots.md.)
sleep 10
for clone in a b; do
	cp "$work/disk.img" "$work/$clone.img"
	mkfifo "$work/l$clone.in"
	: >"$work/l$clone.raw"
	# shellcheck disable=SC2046
	timeout 600 "$vmm" -incoming "file:$work/linux.snap" $(devices "$clone") -D \
		-qmp "unix:$work/l$clone.qmp,server,nowait" \
		<"$work/l$clone.in" >"$work/l$clone.raw" 2>"$work/l$clone.log" &
	pids+=($!)
	eval "linux_$clone=$!"
done
exec 4>"$work/la.in" 5>"$work/lb.in"
for fd in 4 5; do
	clone=$([ $fd = 4 ] && echo a || echo b)
	cat >&$fd <<EOF
echo SNAP date=\$(date +%s) host=$(date +%s)
head -c 64 /dev/hwrng >/dev/null
echo SNAP hwrng=\$(head -c 64 /dev/hwrng | sha256sum | cut -c1-64)
echo SNAP blk=\$(dd if=/dev/vda bs=4096 count=16 2>/dev/null | sha256sum | cut -c1-64)
echo clone-$clone-wrote-this | dd of=/dev/vda bs=512 seek=2048 conv=fsync 2>/dev/null && echo SNAP blk-write=ok
echo SNAP done
EOF
done
for clone in a b; do
	eval "pid=\$linux_$clone"
	guest_wait "$work/l$clone.raw" "$work/l$clone.out" "$pid" '^SNAP done' 300 ||
		fail "Linux clone $clone: commands did not run"
	# the guest ran `date` between the host's write (host= in the line) and now
	eval "seen_$clone=\$(date +%s)"
done
# The guest's listener survived the restore; a new host connection to each clone works.
for clone in a b; do
	printf 'CONNECT 1234\nafter-%s' $clone | timeout 60 socat -t 10 - \
		"UNIX-CONNECT:$work/$clone.vsock" >"$work/l$clone.vsock-out" 2>/dev/null
	expect_grep "Linux clone $clone: vsock CONNECT to the guest's listener" '^OK [0-9]+$' \
		"$work/l$clone.vsock-out"
	expect_grep "Linux clone $clone: vsock echo after the restore" "after-$clone" \
		"$work/l$clone.vsock-out"
done
echo 'poweroff -f' >&4
echo 'poweroff -f' >&5
exec 4>&- 5>&-
host_blk=$(head -c 65536 "$work/disk.img" | sha256sum | cut -c1-64)
for clone in a b; do
	eval "pid=\$linux_$clone"
	wait "$pid"
	expect_eq "Linux clone $clone: poweroff, exit 0" 0 "$?"
	tr -d '\r' <"$work/l$clone.raw" >"$work/l$clone.out"
	out=$work/l$clone.out
	expect_grep "Linux clone $clone: restored" 'VM restored from .*linux.snap' "$work/l$clone.log"
	expect_no_grep "Linux clone $clone: no boot" 'Linux version|guest boot completed' "$work/l$clone.log"
	expect_grep "Linux clone $clone: a command runs after the restore" '^SNAP done$' "$out"
	guest=$(sed -n 's/^SNAP date=\([0-9]*\) host=.*/\1/p' "$out")
	host=$(sed -n 's/^SNAP date=[0-9]* host=\([0-9]*\)/\1/p' "$out")
	eval "seen=\$seen_$clone"
	# Not after the host read its answer (a slow guest reads the command late: the window is
	# as wide as it took), and moved on by the snapshot's 10 s on disk: a restored guest's
	# wall clock has been seen 1-3 s behind the host on a loaded host (kvm-clock moved on at
	# restore, docs/snapshots.md "Clock"; the runtime's agent sets the time exactly), so
	# 5 s of slack below, 2 above.
	if [ -n "$guest" ] && [ "$guest" -ge $((host - 5)) ] && [ "$guest" -le $((seen + 2)) ]; then
		pass "Linux clone $clone: guest clock at host time ($guest, host $host..$seen)"
	else
		fail "Linux clone $clone: guest clock '$guest' outside the host's $host..$seen"
	fi
	expect_grep "Linux clone $clone: /dev/hwrng reads" '^SNAP hwrng=[0-9a-f]{64}$' "$out"
	expect_grep "Linux clone $clone: blk reads the image" "^SNAP blk=$host_blk\$" "$out"
	expect_grep "Linux clone $clone: blk write" '^SNAP blk-write=ok$' "$out"
	expect_eq "Linux clone $clone: the write is in its own image" "clone-$clone-wrote-this" \
		"$(dd if="$work/$clone.img" bs=512 skip=2048 count=1 2>/dev/null | head -n 1)"
	expect_grep "Linux clone $clone: vsock sent TRANSPORT_RESET" 'vsock0: TRANSPORT_RESET sent' \
		"$work/l$clone.log"
	# The connection open at the snapshot ended in the guest (its echo child reports
	# the 6 bytes it had), the new one carried 7. Not anchored: the child prints while the
	# terminal may be echoing the commands typed above.
	expect_grep "Linux clone $clone: the guest dropped the old vsock connection" \
		'STRATUS-TEST echo bytes=6 hash=' "$out"
	expect_grep "Linux clone $clone: the new vsock connection ended cleanly" \
		'STRATUS-TEST echo bytes=7 hash=' "$out"
	expect_no_grep "Linux clone $clone: no device needed a reset" 'needs reset' \
		"$work/l$clone.log"
done
hwrng_a=$(sed -n 's/^SNAP hwrng=//p' "$work/la.out")
hwrng_b=$(sed -n 's/^SNAP hwrng=//p' "$work/lb.out")
if [ -n "$hwrng_a" ] && [ "$hwrng_a" != "$hwrng_b" ]; then
	pass "Linux clones read different bytes from /dev/hwrng"
else
	fail "Linux clones: /dev/hwrng '$hwrng_a' and '$hwrng_b' must differ"
fi
expect_eq "the original image is untouched" "$host_blk" \
	"$(head -c 65536 "$work/disk.img" | sha256sum | cut -c1-64)"

finish
