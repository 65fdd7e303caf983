#!/bin/bash
# make-busybox-rootfs.sh: a minimal OCI-style container root filesystem made of the static
# busybox, for the in-VM agent tests (tests/integration/test_agent_vm.sh) and demos.
#
# Usage: tests/integration/rootfs/make-busybox-rootfs.sh OUTDIR [--ext4 IMG [--size MIB]]
#
# OUTDIR gets /bin/busybox and a link in /bin for every applet (/sbin, /usr/bin and
# /usr/sbin are links to /bin), /etc/passwd and /etc/group (root, and "user" 1000:1000),
# /etc/hosts, and the empty /dev, /proc, /sys, /tmp (1777), /run, /root and /home/user.
# OUTDIR must not exist yet or be empty. --ext4 IMG also writes a raw ext4 image of it
# (mkfs.ext4 -d: no root, no loop mount; default 32 MiB), with every inode owned by 0:0
# except /home/user (1000:1000). Both are reproducible: fixed times, UUID and hash seed.
# Needs busybox-static and e2fsprogs.
set -euo pipefail

die() { echo "make-busybox-rootfs: error: $*" >&2; exit 1; }

busybox=${BUSYBOX:-/bin/busybox}
out= img= size=32
while [[ $# -gt 0 ]]; do
	case $1 in
	--ext4) [[ $# -ge 2 ]] || die "--ext4: needs IMG"; img=$2; shift ;;
	--size) [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 8 ]] || die "--size: needs MIB >= 8"
		size=$2; shift ;;
	-*) die "unknown option $1" ;;
	*) [[ -z $out ]] || die "usage: $0 OUTDIR [--ext4 IMG [--size MIB]]"; out=$1 ;;
	esac
	shift
done
[[ -n $out ]] || die "usage: $0 OUTDIR [--ext4 IMG [--size MIB]]"
[[ -x $busybox ]] || die "$busybox not found (apt-get install busybox-static)"
readelf -l "$busybox" | grep -q INTERP && die "$busybox is dynamically linked; need busybox-static"
if [[ -e $out ]] && [[ -n $(ls -A "$out") ]]; then die "OUTDIR $out exists and is not empty"; fi
if [[ -n $img ]]; then command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found (e2fsprogs)"; fi

mkdir -p "$out"/{bin,etc,dev,proc,sys,tmp,run,root,home/user,usr}
chmod 1777 "$out/tmp"
chmod 0700 "$out/root"
install -m 0755 "$busybox" "$out/bin/busybox"
for applet in $("$busybox" --list); do
	[[ $applet == busybox ]] || ln -s busybox "$out/bin/$applet"
done
ln -s bin "$out/sbin"
ln -s ../bin "$out/usr/bin"
ln -s ../bin "$out/usr/sbin"
cat >"$out/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$out/etc/group" <<'GROUP'
root:x:0:
wheel:x:10:user
users:x:100:user
user:x:1000:
nogroup:x:65534:
GROUP
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$out/etc/hosts"
find "$out" -exec touch -h -d @0 {} +

if [[ -n $img ]]; then
	rm -f "$img"
	# Fixed UUID, hash seed and time (E2FSPROGS_FAKE_TIME): the same image every run.
	E2FSPROGS_FAKE_TIME=1 mkfs.ext4 -q -F -t ext4 -b 4096 -L rootfs -d "$out" \
		-U 5a7a1e5e-0000-4000-8000-000000000001 \
		-E hash_seed=5a7a1e5e-0000-4000-8000-000000000002,root_owner=0:0 \
		"$img" "${size}M" >/dev/null || die "mkfs.ext4 of $img failed"
	# mkfs -d copies the files' owners: when not run as root, give them to root (and
	# /home/user to user), as an image unpacked by a runtime would have them.
	cmds=$(mktemp)
	trap 'rm -f "$cmds"' EXIT
	(cd "$out" && find . -mindepth 1 -printf '%P\n') | LC_ALL=C sort | while read -r p; do
		owner=0
		[[ $p == home/user ]] && owner=1000
		printf 'sif "/%s" uid %s\nsif "/%s" gid %s\n' "$p" "$owner" "$p" "$owner"
	done >"$cmds"
	# ... and every inode's change time (mkfs and sif set it to now) to 0.
	(cd "$out" && find . -printf '%P\n') | LC_ALL=C sort | sed 's|.*|sif "/&" ctime 0|' >>"$cmds"
	E2FSPROGS_FAKE_TIME=1 debugfs -w -f "$cmds" "$img" >/dev/null 2>"$cmds.err" ||
		{ cat "$cmds.err" >&2; rm -f "$cmds.err"; die "debugfs on $img failed"; }
	rm -f "$cmds.err"
fi
