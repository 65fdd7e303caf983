#!/usr/bin/env bash
# mkcpio (the production initramfs's archive writer): what GNU cpio reads back from its
# output (names, types, modes, owners, device numbers, contents, link targets), byte-for-byte
# reproducibility whatever the source files' times, and one-line errors that name the list
# line for every kind of bad entry, with no output left behind.
# usage: test_mkcpio.sh MKCPIO
source "$(dirname "$0")/../../tests/integration/lib.sh"
mkcpio=$1
need_file "$mkcpio" stratus-mkcpio
command -v cpio >/dev/null || { echo "SKIP: cpio not installed"; exit 77; }

sha() { sha256sum | cut -d' ' -f1; }
head -c 100003 /dev/urandom >"$work/payload"
: >"$work/empty"
cat >"$work/good.list" <<LIST
# a comment, then a blank line

dir /dev 0755
nod /dev/console 0600 c 5 1
nod /dev/vda 0660 b 254 0
dir /tmp 01777
file /init 0755 $work/payload
file /empty 0644 $work/empty
slink /bin 0777 /usr/bin
LIST
"$mkcpio" -o "$work/a.cpio" "$work/good.list"
expect_eq "a good list: exit 0" 0 "$?"
# GNU cpio's -tv columns: mode, links, owner, group, size or "major, minor", date, name.
cpio -itv --quiet <"$work/a.cpio" >"$work/raw-listing"
expect_grep "dir /dev" '^drwxr-xr-x +2 root +root +0 .* dev$' "$work/raw-listing"
expect_grep "/dev/console: char 5,1, 0600" '^crw------- +1 root +root +5, +1 .* dev/console$' \
	"$work/raw-listing"
expect_grep "/dev/vda: block 254,0" '^brw-rw---- +1 root +root +254, +0 .* dev/vda$' \
	"$work/raw-listing"
expect_grep "/tmp: sticky 1777" '^drwxrwxrwt .* tmp$' "$work/raw-listing"
expect_grep "/init: 0755, its size" '^-rwxr-xr-x +1 root +root +100003 .* init$' \
	"$work/raw-listing"
expect_grep "/bin: a symlink" '^lrwxrwxrwx .* bin -> /usr/bin$' "$work/raw-listing"
expect_grep "times are the epoch" ' 1970 ' "$work/raw-listing"
expect_eq "entries in list order" "dev dev/console dev/vda tmp init empty bin" \
	"$(cpio -it --quiet <"$work/a.cpio" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "/init's content" "$(sha <"$work/payload")" \
	"$(cpio -i --quiet --to-stdout init <"$work/a.cpio" | sha)"
expect_eq "/empty is empty" 0 "$(cpio -i --quiet --to-stdout empty <"$work/a.cpio" | wc -c)"
expect_eq "newc entries 4-byte aligned, archive too" 0 $(($(stat -c %s "$work/a.cpio") % 4))

touch -d '2001-02-03 04:05:06' "$work/payload"
"$mkcpio" -o "$work/b.cpio" "$work/good.list"
expect_eq "reproducible: same bytes after the source's mtime changed" \
	"$(sha <"$work/a.cpio")" "$(sha <"$work/b.cpio")"

# bad LINE... PATTERN: the list fails with exit 1, one line on stderr matching PATTERN.
bad() {
	local what=$1 pattern=$2
	shift 2
	printf '%s\n' "$@" >"$work/bad.list"
	rm -f "$work/bad.cpio"
	expect_failure "$what" 1 "$pattern" "$mkcpio" -o "$work/bad.cpio" "$work/bad.list"
	expect_eq "$what: no output" no "$([ -e "$work/bad.cpio" ] && echo yes || echo no)"
	expect_eq "$what: no temporary file left" "" "$(ls "$work" | grep 'bad.cpio.tmp' || true)"
}
bad "parent not listed" 'bad.list:1: path /dev/console: its parent directory is not listed' \
	'nod /dev/console 0600 c 5 1'
bad "parent is a file" 'bad.list:2: path /init/x: its parent directory is not listed' \
	"file /init 0755 $work/payload" 'dir /init/x 0755'
bad "listed twice" 'bad.list:2: path /dev: listed twice' 'dir /dev 0755' 'dir /dev 0700'
bad "relative path" 'bad.list:1: path dev: must be an absolute path' 'dir dev 0755'
bad "dot-dot" 'bad.list:2: path /dev/../etc: has an empty, "." or ".." component' \
	'dir /dev 0755' 'dir /dev/../etc 0755'
bad "double slash" 'bad.list:1: path //dev: has an empty' 'dir //dev 0755'
bad "mode not octal" 'bad.list:1: mode 0789: must be octal' 'dir /dev 0789'
bad "mode too big" 'bad.list:1: mode 17777: must be octal, at most 07777' 'dir /dev 17777'
bad "missing source" "bad.list:1: source $work/nope: No such file" "file /init 0755 $work/nope"
bad "source is a directory" "bad.list:1: source $work: not a regular file" "file /init 0755 $work"
bad "unknown kind" 'bad.list:1: expected "dir PATH MODE"' 'pipe /p 0644'
bad "device kind" 'bad.list:1: expected' 'nod /console 0600 x 5 1'
bad "device numbers" 'bad.list:1: nod /console: bad major/minor 5 x' 'nod /console 0600 c 5 x'
bad "extra field" 'bad.list:1: expected' 'dir /dev 0755 extra'
bad "missing mode" 'bad.list:1: expected KIND PATH MODE' 'dir /dev'
expect_failure "missing list" 1 'mkcpio: .*/none.list: No such file' \
	"$mkcpio" -o "$work/x.cpio" "$work/none.list"
expect_failure "usage" 2 '^usage: mkcpio -o OUT.cpio LIST$' "$mkcpio" "$work/good.list"
finish
