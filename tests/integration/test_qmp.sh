#!/usr/bin/env bash
# QMP against the freestanding test guest: greeting, negotiation, query-status, stop/cont
# (the guest really stops: its console output stops growing), query-cpus-fast thread ids
# against the VMM's vCPU threads, errors, one client at a time, reconnect, quit (SHUTDOWN
# event, exit 0, socket removed). Then the same QMP script against QEMU (microvm, TCG) and
# ours: the replies and events must have the same JSON shape (keys and value types).
# usage: test_qmp.sh STRATUS_VMM STUB
source "$(dirname "$0")/lib.sh"
vmm=$1
stub=$2
need_file "$vmm" stratus-vmm
need_file "$stub" "the test stub"
need_kvm
for tool in socat jq; do
	command -v $tool >/dev/null || { echo "FAIL: $tool not found (packaging/deps.txt)"; exit 1; }
done

sock=$work/qmp.sock
console=$work/console.txt

# qmp_open: connect a coprocess; qmp_cmd JSON: send one command, print its reply line
# (events before it are appended to $work/events).
qmp_open() {
	coproc QMP { exec socat - "UNIX-CONNECT:$sock"; }
	IFS= read -r -t 5 greeting <&"${QMP[0]}"
}

qmp_cmd() {
	local line
	printf '%s\n' "$1" >&"${QMP[1]}"
	while IFS= read -r -t 10 line <&"${QMP[0]}"; do
		line=${line%$'\r'}
		case $line in
		'{"timestamp"'*) echo "$line" >>"$work/events" ;;
		*) echo "$line"; return 0 ;;
		esac
	done
	echo "(no reply)"
}

qmp_close() {
	exec {QMP[1]}>&-
	wait "$QMP_PID" 2>/dev/null
}

size_of() { stat -c %s "$1"; }

: >"$work/events"
"$vmm" -kernel "$stub" -append b -smp 2 -serial "file:$console" \
	-qmp "unix:$sock,server,nowait" -uuid 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 \
	-disable-seccomp </dev/null >"$work/vmm.out" 2>"$work/vmm.log" &
vmm_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

qmp_open
expect_eq "greeting" \
	'{"QMP":{"version":{"qemu":{"micro":1,"minor":0,"major":5},"package":"stratus-'"$("$vmm" -version | cut -d' ' -f2)"'"},"capabilities":[]}}' \
	"${greeting%$'\r'}"
reply=$(qmp_cmd '{"execute":"query-status"}')
expect_eq "a command before qmp_capabilities" \
	'{"error":{"class":"CommandNotFound","desc":"Expecting capabilities negotiation with '"'"'qmp_capabilities'"'"'"}}' \
	"$reply"
expect_eq "qmp_capabilities" '{"return":{},"id":"c1"}' \
	"$(qmp_cmd '{"execute":"qmp_capabilities","id":"c1"}')"
expect_eq "query-status: running" \
	'{"return":{"status":"running","singlestep":false,"running":true}}' \
	"$(qmp_cmd '{"execute":"query-status"}')"

# A second client waits while the first is connected (no greeting for it).
timeout 1 socat -u "UNIX-CONNECT:$sock" - >"$work/second.out" 2>/dev/null
expect_eq "a second client gets nothing while the first is connected" 0 \
	"$(size_of "$work/second.out")"

wait_for '\.\.\.' "$console" 10
expect_eq "stop" '{"return":{}}' "$(qmp_cmd '{"execute":"stop"}')"
expect_grep "STOP event with a timestamp" \
	'^\{"timestamp":\{"seconds":[0-9]+,"microseconds":[0-9]+\},"event":"STOP"\}$' "$work/events"
expect_eq "query-status: paused" \
	'{"return":{"status":"paused","singlestep":false,"running":false}}' \
	"$(qmp_cmd '{"execute":"query-status"}')"
before=$(size_of "$console")
sleep 1
expect_eq "paused: the guest's console output does not grow" "$before" "$(size_of "$console")"
expect_eq "cont" '{"return":{}}' "$(qmp_cmd '{"execute":"cont"}')"
expect_grep "RESUME event" '"event":"RESUME"' "$work/events"
for _ in $(seq 100); do
	[ "$(size_of "$console")" -gt "$before" ] && break
	sleep 0.1
done
after=$(size_of "$console")
if [ "$after" -gt "$before" ]; then pass "resumed: the console grows again"; else
	fail "resumed: the console stayed at $after bytes"
fi

# query-cpus-fast: the thread ids are the VMM's vCPU threads.
cpus=$(qmp_cmd '{"execute":"query-cpus-fast"}')
for i in 0 1; do
	tid=$(jq -r ".return[$i].\"thread-id\"" <<<"$cpus")
	expect_eq "query-cpus-fast: cpu $i's thread is vcpu$i" "vcpu$i" \
		"$(cat "/proc/$vmm_pid/task/$tid/comm" 2>/dev/null)"
done
expect_eq "query-cpus-fast: arch and target" "x86 x86_64" \
	"$(jq -r '.return[0] | "\(.arch) \(.target)"' <<<"$cpus")"

expect_eq "unknown command" \
	'{"error":{"class":"CommandNotFound","desc":"The command no-such-thing has not been found"},"id":5}' \
	"$(qmp_cmd '{"execute":"no-such-thing","id":5}')"
expect_grep "bad JSON: GenericError" '^\{"error":\{"class":"GenericError","desc":"JSON parse error' \
	<(qmp_cmd '{"execute":]')
qmp_close

# A flood is slowed (64 at once, then 100 per second; the timing is unit-tested), never
# dropped: the client over its rate is read again when its timer fires.
{
	echo '{"execute":"qmp_capabilities"}'
	for _ in $(seq 200); do echo '{"execute":"query-status"}'; done
	sleep 4
} | timeout 20 socat -t 5 - "UNIX-CONNECT:$sock" | tr -d '\r' >"$work/flood.out"
expect_eq "flood: every command answered" 201 "$(grep -c '^{"return"' "$work/flood.out")"

# Reconnect: a new session (greeting, negotiation again), then quit.
qmp_open
expect_grep "reconnect: greeting again" '^\{"QMP":' <(echo "$greeting")
qmp_cmd '{"execute":"qmp_capabilities"}' >/dev/null
: >"$work/events"
expect_eq "quit" '{"return":{}}' "$(qmp_cmd '{"execute":"quit"}')"
IFS= read -r -t 5 line <&"${QMP[0]}"
expect_grep "SHUTDOWN event after quit" \
	'"event":"SHUTDOWN","data":\{"guest":false,"reason":"host-qmp-quit"\}' <(echo "$line")
wait "$vmm_pid"
expect_eq "quit: exit 0" 0 "$?"
qmp_close
if [ ! -e "$sock" ]; then pass "the QMP socket is removed at exit"; else
	fail "the QMP socket is still there"
fi
expect_grep "uuid logged" 'uuid 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0' "$work/vmm.log"
expect_grep "-disable-seccomp warns" 'warn: -disable-seccomp: SECCOMP FILTERS DISABLED' "$work/vmm.log"

# SIGTERM while paused: the parked vCPUs leave, the client hears why, exit 0.
"$vmm" -kernel "$stub" -append b -smp 2 -serial none -qmp "unix:$sock,server,nowait" \
	</dev/null >"$work/vmm3.out" 2>"$work/vmm3.log" &
vmm_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
qmp_open
qmp_cmd '{"execute":"qmp_capabilities"}' >/dev/null
expect_eq "stop (before SIGTERM)" '{"return":{}}' "$(qmp_cmd '{"execute":"stop"}')"
kill -TERM "$vmm_pid"
IFS= read -r -t 10 line <&"${QMP[0]}"
expect_grep "SIGTERM while paused: SHUTDOWN event" \
	'"event":"SHUTDOWN","data":\{"guest":false,"reason":"host-signal"\}' <(echo "$line")
wait "$vmm_pid"
expect_eq "SIGTERM while paused: exit 0" 0 "$?"
qmp_close

# Side by side with QEMU: the same script, replies and events compared by shape.
script='{"execute":"qmp_capabilities"}
{"execute":"query-status"}
{"execute":"stop"}
{"execute":"query-status"}
{"execute":"cont"}
{"execute":"query-version"}
{"execute":"no-such-thing","id":"x"}
{"execute":]
{"execute":"blockdev-add","arguments":{"driver":"raw","node-name":"n1","read-only":true,"file":{"driver":"file","filename":"'"$work/shape.img"'"}}}
{"execute":"device_del","arguments":{"id":"nope"}}
{"execute":"blockdev-del","arguments":{"node-name":"n1"}}
{"execute":"blockdev-del","arguments":{"node-name":"nope"}}
{"execute":"quit"}'
head -c 1M /dev/zero >"$work/shape.img"
# shape: every scalar becomes its type, arrays become "array" (QEMU has capabilities).
shape='def s: if type == "object" then with_entries(.value |= s)
	elif type == "array" then "array" else type end; s'

run_script() { # SOCKET OUTPUT: the script one line every 0.3 s, replies and events kept
	while IFS= read -r cmd; do
		echo "$cmd"
		sleep 0.3
	done <<<"$script" | socat -t 3 - "UNIX-CONNECT:$1" | tr -d '\r' >"$2"
}

split_shapes() { # OUTPUT: $OUTPUT.replies and $OUTPUT.events, one shape per line
	grep -v '"timestamp"' "$1" | jq -S -c "$shape" >"$1.replies"
	grep '"timestamp"' "$1" | jq -S -c "$shape" >"$1.events"
}

if ! command -v qemu-system-x86_64 >/dev/null; then
	fail "qemu-system-x86_64 not found (packaging/deps.txt: qemu-system-x86)"
else
	qemu-system-x86_64 -M microvm,x-option-roms=off,isa-serial=on,rtc=off -accel tcg \
		-nodefaults -nographic -kernel "$stub" -append i \
		-qmp "unix:$work/qemu.sock,server,nowait" </dev/null >"$work/qemu.out" 2>&1 &
	qemu_pid=$!
	"$vmm" -kernel "$stub" -append i -serial none -qmp "unix:$sock,server,nowait" \
		</dev/null >"$work/vmm2.out" 2>"$work/vmm2.log" &
	vmm_pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && [ -S "$work/qemu.sock" ] && break; sleep 0.05; done
	run_script "$work/qemu.sock" "$work/qemu.qmp" &
	script_pid=$!
	run_script "$sock" "$work/ours.qmp"
	wait "$script_pid"
	split_shapes "$work/qemu.qmp"
	split_shapes "$work/ours.qmp"
	expect_eq "QEMU answered every command (and greeted)" 14 "$(wc -l <"$work/qemu.qmp.replies")"
	if diff -u "$work/qemu.qmp.replies" "$work/ours.qmp.replies" >"$work/shape.diff"; then
		pass "same reply shapes as QEMU (greeting, status, stop/cont, version, errors, block nodes, quit)"
	else
		fail "reply shapes differ from QEMU's:"
		sed 's/^/    | /' "$work/shape.diff"
	fi
	if diff -u "$work/qemu.qmp.events" "$work/ours.qmp.events" >"$work/events.diff"; then
		pass "same event shapes as QEMU (STOP, RESUME, SHUTDOWN)"
	else
		fail "event shapes differ from QEMU's:"
		sed 's/^/    | /' "$work/events.diff"
	fi
	kill "$qemu_pid" 2>/dev/null
	wait "$qemu_pid" "$vmm_pid" 2>/dev/null
fi

finish
