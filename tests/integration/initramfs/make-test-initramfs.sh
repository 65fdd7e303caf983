#!/bin/bash
# make-test-initramfs.sh: build the initramfs our integration tests boot the
# guest kernel with: an uncompressed newc cpio holding the static busybox,
# the links for the applets the init uses, and init.sh as /init.
#
# Usage: tests/integration/initramfs/make-test-initramfs.sh [--pvm-syscall-sim]
#            [--add HOST_PATH:GUEST_PATH]... [--applets "a b c"] OUT.cpio
#
# --add puts a host file into the image (mode kept), for device tests that bring
# their own guest programs or scripts; the init runs every stratus_test_run=PATH
# word of the kernel command line (see init.sh). --applets adds busybox links.
#
# --pvm-syscall-sim also builds pvm-syscall-sim.c (gcc) into /bin; the init
# runs it, which tests the guest kernel's stratus.pvm_syscall fix-up on any
# x86-64 host, QEMU TCG included.
#
# Needs busybox-static and cpio. As root, /dev/console is added too (without
# it the kernel's built-in initramfs provides it). The output is reproducible:
# fixed owners and mtimes, sorted entries.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=${BUSYBOX:-/bin/busybox}
# Applets init.sh runs by name; ash builtins (echo, kill, test, read, ...)
# need no link.
applets=(sh mount devmem cat true sleep poweroff reboot)

die() { echo "make-test-initramfs: error: $*" >&2; exit 1; }

with_sim=0
adds=()
while [[ $# -gt 1 ]]; do
	case $1 in
	--pvm-syscall-sim) with_sim=1 ;;
	--add) adds+=("$2"); shift ;;
	--applets) read -r -a more <<<"$2"; applets+=("${more[@]}"); shift ;;
	*) break ;;
	esac
	shift
done
[[ $# -eq 1 ]] || die "usage: $0 [--pvm-syscall-sim] [--add HOST:GUEST]... [--applets LIST] OUT.cpio"
out=$1
[[ -x $busybox ]] || die "$busybox not found (apt-get install busybox-static)"
if readelf -l "$busybox" | grep -q INTERP; then
	die "$busybox is dynamically linked; the initramfs needs busybox-static"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,dev,proc,sys,tmp}
install -m 0755 "$busybox" "$stage/bin/busybox"
for applet in "${applets[@]}"; do
	ln -s busybox "$stage/bin/$applet"
done
install -m 0755 "$here/init.sh" "$stage/init"
if [[ $with_sim == 1 ]]; then
	gcc -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector \
		-fno-pie -no-pie -mno-red-zone -O2 -Wall -Wextra -s \
		-o "$stage/bin/pvm-syscall-sim" "$here/pvm-syscall-sim.c" ||
		die "building pvm-syscall-sim failed"
fi
for add in "${adds[@]}"; do
	host=${add%%:*}
	guest=${add#*:}
	[[ -f $host && $guest == /* && $add == *:* ]] || die "--add $add: need HOST_FILE:/GUEST/PATH"
	mkdir -p "$stage$(dirname "$guest")"
	cp -p "$host" "$stage$guest"
done
if [[ $(id -u) -eq 0 ]]; then
	mknod -m 0600 "$stage/dev/console" c 5 1
fi

find "$stage" -exec touch -h -d @0 {} +
mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z |
	cpio --quiet --null -o -H newc --owner 0:0 --reproducible) >"$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
echo "$out"
