#!/usr/bin/env bash
# virtio-fs with the real guest kernel, one boot: three shares (writable cache=auto,
# read-only cache=always, cache=none) mounted with -t virtiofs; the guest (fs/guest-fs.sh
# and the static fs/fs-probe.c) creates, writes, reads, renames, links, chmods, chowns,
# truncates, sets xattrs, writes through mmap, makes a 5 GiB sparse file, lists 10,000
# host-made names, makes 1,000, untars a busybox rootfs, tries to escape the share, and
# finally fsyncs a file and waits: the host SIGKILLs the VMM and finds the data on disk.
# Everything is then checked here, on the host.
# usage: test_virtio_fs.sh STRATUS_VMM VMLINUX
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/console.sh"
vmm=$1
kernel=$2
here=$(cd "$(dirname "$0")" && pwd)
need_file "$vmm" stratus-vmm
need_file "$kernel" "the guest kernel (guest-kernel-config/build-kernel.sh)"
need_kvm

share=$work/share
mkdir -p "$share/many" "$work/ro" "$work/nc" "$work/outside"
echo secret >"$work/outside/secret"
echo marker >"$work/stratus-host-marker"
ln -s "$work/outside/secret" "$share/to-secret"
ln -s ../stratus-host-marker "$share/to-parent"
ln -s / "$share/to-root"
for i in $(seq -w 0 9999); do : >"$share/many/h$i"; done
echo "read-only data" >"$work/ro/hello"

# The busybox rootfs, as a tar the guest unpacks and a copy the host unpacks.
"$here/rootfs/make-busybox-rootfs.sh" "$work/rootfs-src" >/dev/null
tar -C "$work/rootfs-src" --numeric-owner -cf "$work/rootfs.tar" .
mkdir "$work/rootfs-host"
tar -C "$work/rootfs-host" --numeric-owner --same-owner -xpf "$work/rootfs.tar"

gcc -static -O2 -Wall -o "$work/fs-probe" "$here/fs/fs-probe.c" || { echo "FAIL: gcc -static"; exit 1; }
"$here/initramfs/make-test-initramfs.sh" --add "$here/fs/guest-fs.sh:/tests/fs.sh" \
	--add "$work/fs-probe:/bin/fs-probe" --add "$work/rootfs.tar:/data/rootfs.tar" \
	--applets "mkdir ls wc tar rm mknod sync" "$work/initramfs.cpio" >/dev/null

"$vmm" -kernel "$kernel" -initrd "$work/initramfs.cpio" -m 512 -smp 1 -D \
	-device virtio-fs-device,id=fs0,tag=share,source="$share" \
	-device virtio-fs-device,id=fs1,tag=rodata,source="$work/ro",readonly=on,cache=always \
	-device virtio-fs-device,id=fs2,tag=nocache,source="$work/nc",cache=none \
	-append "quiet stratus_test_quick stratus_test_run=/tests/fs.sh" \
	</dev/null >"$work/fs.raw" 2>"$work/fs.log" &
pid=$!
if guest_wait "$work/fs.raw" "$work/fs.out" "$pid" '^FS durable=' 1500; then
	pass "guest reached the durability step"
else
	fail "guest did not reach the durability step"
fi

# Each share is served by its own process (docs/virtio-fs.md, "Process"): a child of the VMM
# named fs-ID, filtered, with no_new_privs and at most the file capabilities; the VMM itself
# holds none.
status_of() { grep "^$2:" "/proc/$1/status" | cut -f2-; }
expect_eq "VMM: CapEff is empty" 0000000000000000 "$(status_of "$pid" CapEff)"
expect_eq "VMM: NoNewPrivs: 1" 1 "$(status_of "$pid" NoNewPrivs)"
expect_eq "VMM: Seccomp: 2" 2 "$(status_of "$pid" Seccomp)"
helpers=()
for h in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
	case $(cat "/proc/$h/comm" 2>/dev/null) in fs-*) helpers+=("$h") ;; esac
done
expect_eq "one process per share, named fs-ID" "fs-fs0 fs-fs1 fs-fs2" \
	"$(for h in "${helpers[@]}"; do cat "/proc/$h/comm"; done | sort | xargs)"
file_caps=$((0x800001f)) # CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID MKNOD
for h in "${helpers[@]}"; do
	name=$(cat "/proc/$h/comm")
	expect_eq "$name: NoNewPrivs: 1, Seccomp: 2" "1 2" \
		"$(status_of "$h" NoNewPrivs) $(status_of "$h" Seccomp)"
	expect_eq "$name: only file capabilities (CapEff, CapPrm, CapBnd)" "0 0 0" \
		"$(((0x$(status_of "$h" CapEff)) & ~file_caps)) $(((0x$(status_of "$h" CapPrm)) & ~file_caps)) $(((0x$(status_of "$h" CapBnd)) & ~file_caps))"
	if [ "$(id -u)" = 0 ]; then
		expect_eq "$name: keeps the file capabilities (started as root)" 000000000800001f \
			"$(status_of "$h" CapEff)"
	fi
	[ "$name" = fs-fs2 ] && nc_pid=$h
done

# SIGKILL of one share's process: the VMM logs it, reaps it, the device needs a reset and
# the guest goes on (its ticks keep coming on the console); the other shares' stay.
tick() { grep -o '^FS tick=[0-9]*' "$work/fs.out" | tail -n 1 | cut -d= -f2; }
kill -KILL "${nc_pid:-0}"
for _ in $(seq 300); do grep -q 'fs2: the share.s process .* killed' "$work/fs.log" && break; sleep 0.1; done
expect_grep "fs2's process killed: the VMM logs it" \
	"fs2: the share's process ${nc_pid:-x} was killed by signal 9" "$work/fs.log"
expect_grep "fs2's process killed: the device needs a reset" \
	"fs2: the share's process is gone: device needs reset" "$work/fs.log"
expect_eq "fs2's process killed: reaped, no zombie" no \
	"$([ -e "/proc/${nc_pid:-0}" ] && echo yes || echo no)"
expect_eq "fs2's process killed: the VMM runs on" yes "$(kill -0 "$pid" 2>/dev/null && echo yes)"
tr -d '\r' <"$work/fs.raw" >"$work/fs.out"
after=$(($(tick) + 2))
if guest_wait "$work/fs.raw" "$work/fs.out" "$pid" "^FS tick=$after\$" 300; then
	pass "fs2's process killed: the guest runs on (console ticks)"
else
	fail "fs2's process killed: the guest stopped (no tick $after)"
fi
expect_eq "the other shares' processes live on" "fs-fs0 fs-fs1" \
	"$(for h in "${helpers[@]}"; do cat "/proc/$h/comm" 2>/dev/null; done | sort | xargs)"

# SIGKILL: nothing of the VMM gets to flush or close anything.
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
# ...and the shares' processes die with it (PR_SET_PDEATHSIG).
for _ in $(seq 100); do
	left=$(for h in "${helpers[@]}"; do [ -e "/proc/$h" ] && cat "/proc/$h/comm" 2>/dev/null; done | xargs)
	[ -z "$left" ] && break
	sleep 0.1
done
expect_eq "VMM killed: no share's process remains" "" "$left"
tr -d '\r' <"$work/fs.raw" >"$work/fs.out"
out=$work/fs.out
grep '^FS ' "$out" | sed 's/^/    guest: /'

expect_grep "mount -t virtiofs share" '^FS mount=ok$' "$out"
expect_grep "mount the read-only share" '^FS mount-ro=ok$' "$out"
expect_grep "mount the cache=none share" '^FS mount-nc=ok$' "$out"
for k in create read rename link symlink mkdir-rmdir-unlink xattr mmap; do
	expect_grep "guest: $k" "^FS $k=ok\$" "$out"
done
expect_grep "guest: chmod" '^FS chmod=751$' "$out"
expect_grep "guest: chown" '^FS chown=1234:5678$' "$out"
expect_grep "guest: truncate" '^FS truncate=12345$' "$out"
expect_grep "guest: 5 GiB sparse file" '^FS sparse=5368709124 ok$' "$out"
expect_grep "guest: readdir of 10,000 host names" '^FS count=10000$' "$out"
expect_grep "guest: ls of 10,000 host names" '^FS ls-many=10000$' "$out"
expect_grep "guest: made 1,000 files" '^FS mkmany=1000$' "$out"
expect_grep "guest: untar of a busybox rootfs" '^FS untar=ok$' "$out"
expect_grep "escape: host symlink to a host path" '^FS escape-host-symlink=ENOENT$' "$out"
expect_grep "escape: relative symlink out of the share" '^FS escape-relative-symlink=ENOENT$' "$out"
expect_grep "escape: .. at the share root" '^FS escape-dotdot=ENOENT$' "$out"
expect_grep "escape: symlink to / is the guest's /" '^FS escape-root-symlink=guest-root$' "$out"
expect_grep "escape: /proc/self/fd/N/.." '^FS escape-proc-fd=ENOENT$' "$out"
expect_grep "escape: rename out of the share" '^FS escape-rename=EXDEV$' "$out"
expect_grep "escape: link out of the share" '^FS escape-link=EXDEV$' "$out"
expect_grep "escape: link into the share" '^FS escape-link-in=EXDEV$' "$out"
expect_grep "read-only share: read" '^FS ro-read=read-only data$' "$out"
expect_grep "read-only share: write refused" '^FS ro-write=refused$' "$out"
expect_grep "read-only share: unlink refused" '^FS ro-unlink=refused$' "$out"
expect_grep "cache=none share: write and read" '^FS nc-read=nocache-data$' "$out"
expect_grep "device node is the guest's" '^FS devnode=ok$' "$out"
expect_grep "durable: fsync done in the guest" '^FS durable=synced$' "$out"

# On the host.
expect_eq "host: durable data after SIGKILL" "durable-data" "$(cat "$share/durable.txt" 2>&1)"
expect_eq "host: renamed.txt mode and owner" "751 1234 5678 12345" \
	"$(stat -c '%a %u %g %s' "$share/renamed.txt" 2>&1)"
expect_eq "host: new.txt is gone (renamed)" "no" "$([ -e "$share/new.txt" ] && echo yes || echo no)"
expect_eq "host: sym is a symlink to renamed.txt" "renamed.txt" "$(readlink "$share/sym")"
expect_eq "host: xattr" "xattr-value" "$("$work/fs-probe" getxattr "$share/xattr.txt" user.stratus)"
expect_eq "host: mmap'd bytes" "ok" "$("$work/fs-probe" check-mmap "$share/mmap.bin")"
expect_eq "host: sparse file size" 5368709124 "$(stat -c %s "$share/sparse.bin")"
expect_eq "host: sparse file is sparse" yes \
	"$([ "$(stat -c %b "$share/sparse.bin")" -lt 1024 ] && echo yes || echo no)"
expect_eq "host: 1,000 guest-made files" 1000 "$(find "$share/made" -type f | wc -l)"
expect_eq "host: guest symlinks stay symlinks" "/ ../../../../etc/passwd /proc/self/fd/3" \
	"$(readlink "$share/guest-root-link") $(readlink "$share/guest-dotdot-link") $(readlink "$share/guest-proc-link")"
expect_eq "host: device node made by the guest" "c 1 3" \
	"$(stat -c '%F' "$share/devnull" | sed 's/character special file/c/') $(stat -c '%t %T' "$share/devnull")"
expect_eq "host: outside directory untouched" "secret secret" "$(ls "$work/outside") $(cat "$work/outside/secret")"
expect_eq "host: nothing landed in the guest's /tmp names on the host" "no" \
	"$([ -e /tmp/stolen ] || [ -e /tmp/linked ] && echo yes || echo no)"
expect_eq "host: read-only share unchanged" "hello" "$(ls "$work/ro")"
expect_eq "host: cache=none data" "nocache-data" "$(cat "$work/nc/f" 2>&1)"
if diff -r --no-dereference "$work/rootfs-host" "$share/rootfs" >"$work/rootfs.diff" 2>&1; then
	pass "host: untarred rootfs equals the tar's contents"
else
	fail "host: untarred rootfs differs"
	head -n 20 "$work/rootfs.diff" | sed 's/^/    | /'
fi
owners() { (cd "$1" && find . -printf '%p %y %u %g %m\n' | sort); }
expect_eq "host: rootfs owners, types and modes" "$(owners "$work/rootfs-host")" \
	"$(owners "$share/rootfs")"

expect_grep "fs0: the driver negotiated VERSION_1" 'fs0: driver ready, features 0x1[0-9a-f]{8}$' \
	"$work/fs.log"
expect_no_grep "no other device needed a reset" '(fs0|fs1|blk|vsock).*needs reset' "$work/fs.log"

# Refused up front, with one line naming the problem (2: a command-line error).
expect_failure "missing source" 1 'fs9: source=.*/missing' \
	"$vmm" -kernel "$kernel" -device virtio-fs-device,id=fs9,tag=t,source="$work/missing"
expect_failure "source is a file" 1 'fs9: source=.*hello' \
	"$vmm" -kernel "$kernel" -device virtio-fs-device,id=fs9,tag=t,source="$work/ro/hello"
expect_failure "tag too long" 2 "tag=.*1 to 36" \
	"$vmm" -kernel "$kernel" -device virtio-fs-device,tag=0123456789012345678901234567890123456,source="$share"
expect_failure "no tag" 2 'needs tag=TAG' \
	"$vmm" -kernel "$kernel" -device virtio-fs-device,source="$share"
expect_failure "bad cache mode" 2 "cache must be auto, none or always" \
	"$vmm" -kernel "$kernel" -device virtio-fs-device,tag=t,source="$share",cache=sometimes
expect_failure "one tag twice" 1 "tag 't' is used twice" \
	"$vmm" -kernel "$kernel" -device virtio-fs-device,tag=t,source="$share" \
	-device virtio-fs-device,tag=t,source="$work/ro"

finish
