# VM templates (docs/runtime.md "Templates"), sourced by test_cli.sh as its section 10 with its
# variables and helpers ($stratus, $root, $work, $bundle, $kernel, S, make_config, expect_*).
# $STRATUS_TEMPLATE_DIR is the test's own. Without a VM: `stratus template`'s usage errors.
# With STRATUS_TEMPLATE=0 (the cold-boot run of test_cli.sh) nothing else; otherwise: the runs
# above made one template; two clones at once read different /dev/urandom bytes and tell the
# host's time; a truncated snapshot and one with a flipped header byte each cost a warning and
# a cold boot, and the next create builds a new template and restores it; a changed kernel
# (touched) builds a new template and removes the stale one, not another kernel's; the
# annotation opts out; two runs at once without a template share one build; template
# create/list/rm.
tdir=$STRATUS_TEMPLATE_DIR

expect_failure "template without a command" 1 '^stratus: template: requires a command: create, list or rm' \
	S template
expect_failure "template with an unknown command" 1 '^stratus: template: unknown command "make" \(create, list or rm\)$' \
	S template make
expect_failure "template create --vcpus 0" 1 \
	'^stratus: template create: --vcpus: must be a number from 1 to 64, not "0"$' S template create --vcpus 0
expect_failure "template create --memory" 1 '^stratus: template create: --memory: needs a value$' \
	S template create --memory
expect_failure "template rm without a key" 1 '^stratus: template rm: requires a template key or --all$' \
	S template rm
expect_failure "template rm of an unknown key" 1 '^stratus: template "0123nokey" does not exist$' \
	S template rm 0123nokey
expect_eq "template --help" yes "$(S template --help | grep -q '^usage: stratus template COMMAND' && echo yes)"

if [ "${STRATUS_TEMPLATE:-}" = 0 ]; then
	expect_eq "STRATUS_TEMPLATE=0: no template was made" "" "$(S template list -q)"
	return 0
fi

phase_list() { sed -n 's/.*msg="phase \([a-z-]*\) .*/\1/p' "$1" | tr '\n' ' ' | sed 's/ $//'; }
# trun NAME: run NAME from $bundle with --debug --log $work/NAME.log; NAME.out, NAME.err
trun() {
	rm -f "$work/$1.log"
	timeout 600 "$stratus" --root "$root" --debug --log "$work/$1.log" run --bundle "$bundle" "$1" \
		</dev/null >"$work/$1.out" 2>"$work/$1.err"
}
# how the VM of run NAME came to be: built, restored, or built-restored (template made first)
how() {
	local p
	p=$(phase_list "$work/$1.log")
	case " $p " in
	*" vm-restored "*" vm-built "*) echo "fell-back: $(head -c 300 "$work/$1.err")" ;;
	*" template-built "*" vm-restored "*) echo built-restored ;;
	*" vm-restored "*) echo restored ;;
	*" vm-built "*) echo built ;;
	*) echo "none: $p" ;;
	esac
}

key=$(S template list -q)
expect_eq "the runs above made one template" 1 "$(printf '%s\n' "$key" | grep -c .)"
expect_eq "template list --format json: its size and directory" "1 128 $tdir/$key" \
	"$(S template list --format json | jq -r '.[0] | "\(.vcpus) \(.memory_mib) \(.path)"')"
expect_eq "template list: a table" "KEY VCPUS MEMORY DISK CREATED KERNEL|$key 1 128" \
	"$(S template list | awk 'NR == 1 { h = $1" "$2" "$3" "$4" "$5" "$6 } NR == 2 { r = $1" "$2" "$3 } END { print h "|" r }')"

# two clones at once: different random bytes, the host's wall clock
make_config '["sleep", "1000"]'
for c in t1 t2; do
	timeout 600 "$stratus" --root "$root" --debug --log "$work/$c.log" run --detach --bundle "$bundle" $c \
		</dev/null >/dev/null 2>"$work/$c.err"
	expect_eq "clone $c: runs (restored from the template)" "running restored" \
		"$(S state $c | jq -r .status) $(how $c)"
done
r1=$(S exec t1 sh -c 'head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n"' </dev/null)
r2=$(S exec t2 sh -c 'head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n"' </dev/null)
expect_eq "two clones: 16 bytes of /dev/urandom each" "32 32" "${#r1} ${#r2}"
expect_eq "two clones read different /dev/urandom bytes" different "$([ "$r1" != "$r2" ] && echo different || echo "same: $r1")"
for c in t1 t2; do
	before=$(date +%s)
	guest=$(S exec $c date +%s </dev/null)
	after=$(date +%s)
	expect_eq "clone $c: the guest's date +%s within 2 s of the host's" yes \
		"$([ "$guest" -ge $((before - 2)) ] && [ "$guest" -le $((after + 2)) ] && echo yes ||
			echo "no: guest $guest, host $before..$after")"
done
S delete --force t1
S delete --force t2

# a damaged template: a warning, a cold boot; the next create builds a new one and restores it
make_config '["echo", "hi"]'
damage() { # truncate | flip: the snapshot's tail gone, or a byte of its header changed
	local snap=$tdir/$key/snapshot
	if [ "$1" = truncate ]; then truncate -s 8192 "$snap"; else
		printf '\377' | dd of="$snap" bs=1 seek=40 conv=notrunc status=none
	fi
}
n=3
for d in truncate flip; do
	damage $d
	trun t$n
	expect_eq "damaged template ($d): the container runs, cold-booted" "0 hi built" \
		"$? $(cat "$work/t$n.out") $(how t$n)"
	expect_grep "damaged template ($d): one warning naming it" \
		"^stratus: warning: template $tdir/$key/snapshot: .*; removed it, booting the VM without a template$" \
		"$work/t$n.err"
	expect_eq "damaged template ($d): removed" gone "$([ -e "$tdir/$key" ] && echo there || echo gone)"
	trun t$((n + 1))
	expect_eq "after the damaged template ($d): the next run builds a new one and restores it" \
		"0 hi built-restored" "$? $(cat "$work/t$((n + 1)).out") $(how t$((n + 1)))"
	expect_eq "after the damaged template ($d): no warning" "" "$(cat "$work/t$((n + 1)).err")"
	n=$((n + 2))
done
expect_eq "damaged templates replaced: one template, the same key" "$key" "$(S template list -q)"

# a changed input: a new key; the stale template of that kernel goes, the other kernel's stays
cp "$kernel" "$work/vmlinux-copy"
STRATUS_KERNEL=$work/vmlinux-copy trun t7
expect_eq "another kernel: a template of its own, built and restored" "0 built-restored 2" \
	"$? $(how t7) $(S template list -q | wc -l)"
copy_key=$(S template list --format json | jq -r ".[] | select(.kernel == \"$work/vmlinux-copy\") | .key")
touch "$work/vmlinux-copy"
STRATUS_KERNEL=$work/vmlinux-copy trun t8
expect_eq "the kernel touched: rebuilt" "0 built-restored" "$? $(how t8)"
expect_eq "the kernel touched: the stale template removed, the other kernel's kept" \
	"2 gone $key" \
	"$(S template list -q | wc -l) $([ -e "$tdir/$copy_key" ] && echo there || echo gone) \
$(S template list --format json | jq -r ".[] | select(.kernel == \"$kernel\") | .key")"

# opting out: the annotation (STRATUS_TEMPLATE=0 is the whole cold-boot run of test_cli.sh)
make_config '["echo", "hi"]' '| .annotations["io.stratus.vm.template"] = "false"'
trun t9
expect_eq "annotation io.stratus.vm.template=false: a cold boot, no warning" "0 hi built " \
	"$? $(cat "$work/t9.out") $(how t9) $(cat "$work/t9.err")"

# two creates at once and no template: one builds it, the other waits for it; both restore
S template rm --all
make_config '["echo", "hi"]'
trun t10 &
p10=$!
trun t11 &
p11=$!
wait $p10
s10=$?
wait $p11
s11=$?
expect_eq "two runs at once without a template: both run" "0 0 hi hi" \
	"$s10 $s11 $(cat "$work/t10.out") $(cat "$work/t11.out")"
expect_eq "two runs at once without a template: one built it, the other waited and restored" \
	"built-restored restored" "$(printf '%s\n' "$(how t10)" "$(how t11)" | sort | tr '\n' ' ' | sed 's/ $//')"
expect_eq "two runs at once without a template: one template" 1 "$(S template list -q | wc -l)"

# template create / list / rm
out=$(S template create --vcpus 2 --memory 192)
expect_eq "template create --vcpus 2 --memory 192: prints its directory" yes \
	"$([ -f "$out/snapshot" ] && [ "$(dirname "$out")" = "$tdir" ] && echo yes)"
expect_eq "template list: the new one" "2 192" \
	"$(S template list --format json | jq -r ".[] | select(.path == \"$out\") | \"\(.vcpus) \(.memory_mib)\"")"
S template rm "$(basename "$out" | cut -c1-12)"
expect_eq "template rm KEY-PREFIX: gone" gone "$([ -e "$out" ] && echo there || echo gone)"
S template delete --all
expect_eq "template rm --all: none left" "" "$(S template list -q)$(ls "$tdir")"
expect_nothing_left "templates"
