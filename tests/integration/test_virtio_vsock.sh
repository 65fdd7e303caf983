#!/usr/bin/env bash
# virtio-vsock with a real guest kernel, in one boot: the static guest program
# tests/integration/vsock/vsock_guest.c (an AF_VSOCK echo server on port 1234, and a client
# of host ports 5000 and 5001) in a test initramfs built here, and socat on the host side of
# the hybrid-vsock Unix socket. Checks: guest → host 8 MiB to a listener on <uds-path>_5000
# and a connection to a port nobody listens on; host → guest echo of 8 MiB with the FNV hash
# checked on both ends; 64 connections at once; the guest and the host closing abruptly;
# CONNECT to a guest port nobody listens on.
# usage: test_virtio_vsock.sh STRATUS_VMM VMLINUX
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/console.sh"
vmm=$1
kernel=$2
here=$(cd "$(dirname "$0")" && pwd)
need_file "$vmm" stratus-vmm
need_file "$kernel" "the guest kernel (guest-kernel-config/build-kernel.sh)"
need_kvm
command -v socat >/dev/null || { echo "SKIP: socat not installed"; exit 77; }

size=8388608
gcc -static -O2 -o "$work/vsock_guest" "$here/vsock/vsock_guest.c" ||
	{ fail "build the static guest program"; finish; }
gcc -O2 -o "$work/vsock_host" "$here/vsock/vsock_guest.c" || { fail "build the host helper"; finish; }
"$here/initramfs/make-test-initramfs.sh" --add "$work/vsock_guest:/tests/vsock_guest" \
	--add "$here/vsock/vsock.sh:/tests/vsock.sh" "$work/initrd.cpio" >/dev/null ||
	{ fail "build the test initramfs"; finish; }

sock=$work/vsock.sock
# Guest → host: the listener on <uds-path>_5000 must be there before the guest connects.
socat -u UNIX-LISTEN:"${sock}_5000" CREATE:"$work/from_guest" &
listener=$!
timeout 600 "$vmm" -kernel "$kernel" -initrd "$work/initrd.cpio" -m 256 -smp 1 \
	-device vhost-vsock-device,id=vsock0,guest-cid=3,uds-path="$sock" \
	-append "quiet stratus_test_quick stratus_test_run=/tests/vsock.sh stratus_test=idle" \
	</dev/null >"$work/vm.raw" 2>"$work/vm.log" &
vm=$!
out=$work/vm.out

# console_wait REGEX SECONDS: until the guest console shows it (console.sh)
console_wait() { guest_wait "$work/vm.raw" "$out" "$vm" "$1" "$2"; }

if ! console_wait '^STRATUS-TEST vsock-ready' 900; then
	fail "guest reached vsock-ready"
	cat "$out" "$work/vm.log" | tail -30
	kill $vm $listener 2>/dev/null
	finish
fi
pass "guest reached vsock-ready"
wait $listener
sent=$(sed -n 's/^STRATUS-TEST send port=5000 \(.*\) status=ok$/\1/p' "$out")
got=$("$work/vsock_host" hash <"$work/from_guest")
expect_eq "guest → host 8 MiB: hash on both ends" "bytes=$size ${sent#bytes=$size }" "$got"
expect_grep "guest → host port without a listener: connection refused" \
	'^STRATUS-TEST send port=5001 bytes=0 .* status=fail' "$out"

# Host → guest echo of 8 MiB; socat waits (-t) for the echo after its stdin ends.
"$work/vsock_host" gen $size >"$work/data"
want=$("$work/vsock_host" hash <"$work/data")
(printf 'CONNECT 1234\n'; cat "$work/data") | timeout 600 socat -t 600 - UNIX-CONNECT:"$sock" \
	>"$work/echo"
expect_grep "host → guest: OK <port>" '^OK [0-9]+$' <(head -n 1 "$work/echo")
got=$(tail -c +$(($(head -n 1 "$work/echo" | wc -c) + 1)) "$work/echo" | "$work/vsock_host" hash)
expect_eq "host → guest 8 MiB echo: hash back on the host" "$want" "$got"
console_wait "^STRATUS-TEST echo $want\$" 60
expect_grep "host → guest 8 MiB: hash in the guest" "^STRATUS-TEST echo $want\$" "$out"

# 64 connections at once, small payloads.
for i in $(seq 1 64); do
	(printf 'CONNECT 1234\nmessage-%s\n' "$i"; sleep 2) | timeout 120 socat -t 30 - \
		UNIX-CONNECT:"$sock" >"$work/many.$i" &
done
wait $(jobs -p | grep -v "^$vm\$") 2>/dev/null
ok=0
for i in $(seq 1 64); do grep -qx "message-$i" "$work/many.$i" && ok=$((ok + 1)); done
expect_eq "64 concurrent connections echoed" 64 "$ok"

# The guest closes abruptly: the host client sees the connection closed at once.
start=$SECONDS
# (process substitution: the wait is for socat only, not for the sleep feeding it)
timeout 60 socat -t 2 - UNIX-CONNECT:"$sock" < <(printf 'CONNECT 1234\nABORT\n'; sleep 30) \
	>"$work/abort"
expect_eq "guest abrupt close: host client closed quickly" yes \
	"$([ $((SECONDS - start)) -lt 20 ] && echo yes || echo no)"
console_wait '^STRATUS-TEST echo aborted' 30
expect_grep "guest abrupt close: the guest closed it" '^STRATUS-TEST echo aborted' "$out"

# The host closes abruptly (killed mid-connection): the guest sees EOF.
(printf 'CONNECT 1234\nHOSTKILL'; sleep 30) | socat - UNIX-CONNECT:"$sock" >/dev/null &
client=$!
sleep 3
kill -9 $client 2>/dev/null
want=$(printf HOSTKILL | "$work/vsock_host" hash)
console_wait "^STRATUS-TEST echo $want\$" 60
expect_grep "host abrupt close: the guest saw EOF" "^STRATUS-TEST echo $want\$" "$out"

# Nobody listens on guest port 4444: the client is closed, no OK.
printf 'CONNECT 4444\n' | timeout 60 socat -t 30 - UNIX-CONNECT:"$sock" >"$work/refused"
expect_eq "CONNECT to a closed guest port: closed without OK" "" "$(cat "$work/refused")"

kill $vm 2>/dev/null
wait $vm
expect_no_grep "no device reset" 'needs reset' "$work/vm.log"
expect_no_grep "no emulation failure" 'cannot emulate the instruction' "$work/vm.log"
finish
