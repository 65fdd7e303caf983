#!/usr/bin/env bash
# The stratus OCI CLI end to end (docs/runtime.md). Without a VM: every verb's usage errors
# (exit 1, one line naming the problem), unknown containers, `spec` and `features`, and the
# corpus of broken config.json files in cli/bad-configs/ (NAME.json, its one-line error in
# NAME.err with @BUNDLE@ for the bundle) plus a missing config.json and 1 MiB of nesting:
# each refused by `create` with its message and nothing left under --root. With real
# microVMs (a busybox rootfs from rootfs/make-busybox-rootfs.sh), boots kept few:
#   1. run `echo hi`: prints hi, exits 0, leaves nothing; hooks see the state on stdin.
#   2. run with stdout and stderr apart and exit 1; --keep; a long --root whose parents are new;
#      root.readonly (the `spec` default) refuses writes.
#   3. create/start/state/list/ps/exec/events/update/pause/resume/kill --all/delete on one
#      container, with the --pid-file PID being the monitor, a poststop hook, exec exit codes,
#      stdin, env/cwd/user, -t and --detach; its writable rootfs and bind mounts over
#      virtio-fs: writes land in the bundle's rootfs, a rw and a ro host directory, two
#      single files of one host directory (/etc/hosts, /etc/resolv.conf), the staging hidden.
# A missing bind source is refused before any VM: `mounts[N].source`, nothing left.
#   4. run in the background, `kill KILL`: run exits 137; its root is an ext4 image through
#      the io.stratus.rootfs.block annotation (virtio-blk, read-only).
#   5. delete --force of a running container: no monitor, no state, no socket left.
#  5b. linux.cgroupsPath (cgroupfs and --systemd-cgroup): the monitor is in that host cgroup
#      in every hierarchy (v1 controllers and v2 on a hybrid host), no warning, the
#      directories create made are gone after delete (skipped when not root).
#   6. a terminal (process.terminal) through --console-socket: the pty master arrives over
#      SCM_RIGHTS, input reaches the shell, its exit status is run's.
#   7. the VM ends under a running container (QMP quit): the monitor exits 255 at once.
#   8. racing verbs: 10 parallel creates of one ID (one wins, the rest "already exists"), two
#      starts, pause/resume/update at once, a held lock timing out, delete --force racing kill.
# Section 3 also runs update with runc's flags (checked in the guest's cgroup files) and its
# refusals. State (created, running, paused, stopped, a hook's), features and `spec`
# (--rootless too) are validated against the runtime-spec schemas (cli/validate-schema.py).
#   9. pods (cli/pod.sh): a sandbox VM and members created in it by CRI's annotations.
#  10. VM templates (cli/templates.sh): clones, damaged templates, changed inputs, opting
#      out, `stratus template`. Sections 1-9 restore from a template; with STRATUS_TEMPLATE=0
#      (ctest integration_cli_cold) they all cold-boot.
# usage: test_cli.sh STRATUS VMLINUX INITRAMFS
source "$(dirname "$0")/lib.sh"
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
stratus=$(abs "$1")
kernel=$(abs "$2")
initramfs=$(abs "$3")
here=$(cd "$(dirname "$0")" && pwd)
need_file "$stratus" stratus
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
root=$work/root
S() { "$stratus" --root "$root" "$@"; }
export STRATUS_KERNEL=$kernel STRATUS_INITRAMFS=$initramfs
# templates (the default; STRATUS_TEMPLATE=0 runs it all with cold boots): the test's own
export STRATUS_TEMPLATE_DIR=$work/templates

# alive PID: a process that has not exited (a zombie has: only its parent's wait is left)
alive() { [ -e "/proc/$1" ] && ! grep -q ') Z' "/proc/$1/stat" 2>/dev/null; }

expect_nothing_left() {
	local left
	left=$(find "$root" -mindepth 1 2>/dev/null | head -n 5 | tr '\n' ' ')
	expect_eq "$1: nothing left under --root" "" "$left"
}

# ---- without a VM -------------------------------------------------------------------------
expect_failure "no command" 1 "^stratus: no command given" "$stratus"
expect_failure "unknown command" 1 '^stratus: unknown command "frobnicate"' "$stratus" frobnicate
expect_failure "unknown global flag" 1 "^stratus: unknown global flag --bogus" "$stratus" --bogus list
expect_failure "--log-format" 1 '^stratus: --log-format: must be text or json, not "xml"' \
	"$stratus" --log-format xml list
for verb in start state delete pause resume ps events update; do
	expect_failure "$verb without an ID" 1 "^stratus: $verb: requires exactly 1 argument \\(got 0\\)" \
		S $verb
done
expect_failure "kill without an ID" 1 "^stratus: kill: requires at least 1 argument" S kill
expect_failure "kill with 3 arguments" 1 "^stratus: kill: takes at most 2 arguments" S kill a b c
expect_failure "kill with a bad signal" 1 '^stratus: signal: unknown signal "SIGNOPE"' S kill x SIGNOPE
expect_failure "exec without a command" 1 "^stratus: exec: requires a command after the container ID" \
	S exec x
expect_failure "exec --user" 1 '^stratus: exec: --user: must be UID\[:GID\]' S exec -u root x id
expect_failure "create without an ID" 1 "^stratus: create: requires exactly 1 argument \\(got 0\\)" \
	S create
expect_failure "create --preserve-fds 3" 1 "^stratus: create: --preserve-fds: host file descriptors" \
	S create --preserve-fds 3 x
expect_failure "create with an unknown flag" 1 "^stratus: create: unknown flag --frob" S create --frob x
expect_failure "create with a bad ID" 1 '^stratus: container ID: invalid character in "a/b"' \
	S create a/b
expect_failure "ps --format" 1 '^stratus: ps: --format: must be table or json, not "yaml"' \
	S ps --format yaml x
expect_failure "events --interval" 1 "^stratus: events: --interval: not a duration" \
	S events --interval soon x
for verb in start state kill pause resume ps; do
	expect_failure "$verb of an unknown container" 1 '^stratus: container "ghost" does not exist' \
		S $verb ghost
done
expect_failure "exec in an unknown container" 1 '^stratus: container "ghost" does not exist' \
	S exec ghost true
expect_failure "delete of an unknown container" 1 '^stratus: container "ghost" does not exist' \
	S delete ghost
S delete --force ghost
expect_eq "delete --force of an unknown container: exit 0" 0 $?
# state.json is renamed into place without fsync: after a host crash it can be empty
mkdir -p "$root/broken" && : >"$root/broken/state.json"
expect_failure "delete of a container whose state.json is empty" 1 \
	'^stratus: state.json: not valid JSON' S delete broken
S delete --force broken 2>/dev/null
expect_eq "delete --force of it: exit 0, nothing left" "0 no" \
	"$? $([ -e "$root/broken" ] && echo yes || echo no)"
expect_eq "list with no containers" "[]" "$(S list --format json)"
expect_eq "list -q with no containers" "" "$(S list -q)"
S features >"$work/features.json"
expect_eq "features: valid JSON with ociVersionMax" "1.3.0" "$(jq -r .ociVersionMax "$work/features.json")"
expect_eq "features: hooks" 6 "$(jq '.hooks | length' "$work/features.json")"
mkdir -p "$work/spec/rootfs"
(cd "$work/spec" && "$stratus" spec)
expect_eq "spec: runc's default process" '["sh"]' "$(jq -c .process.args "$work/spec/config.json")"
expect_failure "spec refuses to overwrite" 1 "^stratus: spec: ./config.json already exists" \
	sh -c "cd '$work/spec' && exec '$stratus' spec"
# The runtime-spec's JSON schemas (packaging/deps.txt): without them (or python3-jsonschema) the
# schema checks are skipped, except under CI=true, where that is a failure.
schema_dir=/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema
if [ -f "$schema_dir/config-schema.json" ] && [ -f "$schema_dir/state-schema.json" ] &&
	python3 -c 'import jsonschema' 2>/dev/null; then
	schemas=yes
elif [ "${CI:-}" = true ]; then
	schemas=no
	fail "runtime-spec schemas: $schema_dir or python3-jsonschema missing (CI=true: ./dev.sh setup)"
else
	schemas=no
	echo "skip - runtime-spec schema checks: $schema_dir or python3-jsonschema missing"
fi
# expect_valid WHAT [--allow-status S] SCHEMA|--features FILE: valid against the schema
expect_valid() {
	local what=$1
	shift
	[ "$schemas" = yes ] || return 0
	if [ "$1" = --features ]; then
		python3 "$here/cli/validate-schema.py" "$@" >"$work/schema.out" 2>&1
	elif [ "$1" = --allow-status ]; then
		python3 "$here/cli/validate-schema.py" "$1" "$2" "$schema_dir" "$3" "$4" >"$work/schema.out" 2>&1
	else
		python3 "$here/cli/validate-schema.py" "$schema_dir" "$@" >"$work/schema.out" 2>&1
	fi
	if [ $? -eq 0 ]; then pass "$what"; else
		fail "$what:"
		sed 's/^/    | /' "$work/schema.out" | head -n 20
	fi
}
expect_valid "features: valid per features.md and features-linux.md" --features "$work/features.json"
expect_valid "spec: config.json valid against config-schema.json" config-schema.json \
	"$work/spec/config.json"
mkdir -p "$work/spec-rootless"
(cd "$work/spec-rootless" && "$stratus" spec --rootless)
expect_eq "spec --rootless: a user namespace" user \
	"$(jq -r '.linux.namespaces[] | select(.type == "user") | .type' "$work/spec-rootless/config.json")"
expect_valid "spec --rootless: config.json valid against config-schema.json" config-schema.json \
	"$work/spec-rootless/config.json"
if [ "$schemas" = yes ]; then # the validator itself must catch a broken document
	jq '.process.args = "sh"' "$work/spec/config.json" >"$work/broken-config.json"
	expect_failure "the schema check rejects a broken config.json" 1 "process.args: 'sh' is not of type 'array'" \
		python3 "$here/cli/validate-schema.py" "$schema_dir" config-schema.json "$work/broken-config.json"
	jq '.ociVersionMin = "1.4.0" | .linux.seccomp.actions += ["SCMP_ACT_BOGUS"] | .extra = 1' \
		"$work/features.json" >"$work/broken-features.json"
	python3 "$here/cli/validate-schema.py" --features "$work/broken-features.json" 2>"$work/schema.out"
	status=$?
	expect_eq "the features check rejects a broken document: 3 problems, exit 1" "3 1" \
		"$(wc -l <"$work/schema.out") $status"
fi
"$stratus" --root "$root" --log "$work/log.json" --log-format json state ghost 2>/dev/null
expect_eq "--log-format json: runc's JSON lines" 'error|container "ghost" does not exist|true' \
	"$(jq -r '.level + "|" + .msg + "|" + (.time | test("^[0-9-]+T[0-9:.]+Z$") | tostring)' \
		"$work/log.json")"
"$stratus" --root "$root" --log "$work/log.txt" kill ghost 2>/dev/null
expect_grep "--log text" '^time="[^"]+" level=error msg="container \\"ghost\\" does not exist"$' \
	"$work/log.txt"
expect_eq "--version" "stratus version" "$("$stratus" --version | head -n 1 | cut -d' ' -f1-2)"

# Broken configs: one line each, naming the JSON path; nothing created.
for json in "$here"/cli/bad-configs/*.json; do
	name=$(basename "$json" .json)
	bundle=$work/bad/$name
	mkdir -p "$bundle/rootfs"
	cp "$json" "$bundle/config.json"
	want="stratus: $(sed "s|@BUNDLE@|$bundle|g" "${json%.json}.err")"
	S create --bundle "$bundle" bad </dev/null >"$work/bad.out" 2>"$work/bad.err"
	status=$?
	expect_eq "bad config $name: exit 1" 1 "$status"
	expect_eq "bad config $name: message" "$want" "$(cat "$work/bad.err")"
	expect_nothing_left "bad config $name"
done
mkdir -p "$work/bad/nesting/rootfs"
head -c 1048576 /dev/zero | tr '\0' '[' >"$work/bad/nesting/config.json"
expect_failure "1 MiB of nesting" 1 "^stratus: config.json: nested deeper than 64 levels" \
	S create --bundle "$work/bad/nesting" bad
mkdir -p "$work/bad/noconfig/rootfs"
expect_failure "bundle without config.json" 1 "^stratus: .*/config.json: No such file or directory" \
	S create --bundle "$work/bad/noconfig" bad
expect_failure "missing bundle" 1 "^stratus: --bundle: $work/nonexistent: No such file" \
	S create --bundle "$work/nonexistent" bad
expect_nothing_left "refused bundles"
mkdir -p "$work/nokernel/rootfs"
jq '.process.terminal = false' "$work/spec/config.json" >"$work/nokernel/config.json"
STRATUS_KERNEL=$work/no-kernel expect_failure "missing guest kernel" 1 \
	"^stratus: STRATUS_KERNEL: guest kernel not found: $work/no-kernel" \
	S create --bundle "$work/nokernel" bad
expect_nothing_left "missing guest kernel"

# ---- with microVMs ------------------------------------------------------------------------
need_file "$kernel" "the guest kernel (guest-kernel-config/build-kernel.sh)"
need_file "$initramfs" "the production initramfs (cmake target stratus-initramfs)"
need_kvm
bundle=$work/bundle
"$here/rootfs/make-busybox-rootfs.sh" "$bundle/rootfs" >/dev/null ||
	{ fail "build the busybox rootfs"; finish; }
# config.json from `stratus spec` with process.args (JSON) and more jq edits
make_config() {
	(cd "$work/spec" && jq --argjson args "$1" ".process.terminal = false | .process.args = \$args ${2:-}" \
		config.json) >"$bundle/config.json"
}

# a missing bind source: refused before the VM starts, the field named, nothing left
make_config '["true"]' '| .mounts += [{"destination": "/data", "type": "bind",
	"source": "/nonexistent/stratus-src", "options": ["rbind"]}]'
n=$(($(jq '.mounts | length' "$bundle/config.json") - 1))
expect_failure "missing bind source" 1 \
	"^stratus: mounts\[$n\]\.source: /nonexistent/stratus-src: No such file or directory$" \
	S create --bundle "$bundle" bad
expect_nothing_left "missing bind source"

hook() { # a host hook that appends its name and stdin to $work/hooks.log
	printf '{"path": "/bin/sh", "args": ["sh", "-c", "echo %s: $(cat) >> %s"]}' "$1" "$work/hooks.log"
}

# 1. run echo hi, with every create/start hook
make_config '["echo", "hi"]' "| .hooks = {\"createRuntime\": [$(hook createRuntime)], \
	\"createContainer\": [$(hook createContainer)], \"startContainer\": [$(hook startContainer)], \
	\"poststart\": [$(hook poststart)], \"poststop\": [$(hook poststop)]}"
timeout 600 "$stratus" --root "$root" run --bundle "$bundle" r1 </dev/null >"$work/r1.out" 2>"$work/r1.err"
status=$?
expect_eq "run echo hi: exit 0" 0 "$status"
expect_eq "run echo hi: stdout" "hi" "$(cat "$work/r1.out")"
expect_eq "run echo hi: stderr empty" "" "$(cat "$work/r1.err")"
expect_nothing_left "run echo hi"
for h in createRuntime createContainer startContainer poststart poststop; do
	expect_grep "hook $h ran with the state on stdin" "^$h: \\{.*\"id\":\"r1\"" "$work/hooks.log"
done
expect_grep "poststop hook sees status stopped" '^poststop: .*"status":"stopped"' "$work/hooks.log"
for h in createRuntime poststop; do
	sed -n "s/^$h: //p" "$work/hooks.log" >"$work/hook-state.json"
	expect_valid "hook $h: its state valid against state-schema.json" state-schema.json "$work/hook-state.json"
done
expect_eq "hooks in lifecycle order" "createRuntime createContainer startContainer poststart poststop" \
	"$(cut -d: -f1 "$work/hooks.log" | tr '\n' ' ' | sed 's/ $//')"

# 2. stdout and stderr apart, exit 1; a --root and id so long that the state directory's
# sockets exceed sun_path (podman's 64-character ids under a long root), which runc allows
deep="$root/deeper/$(printf 'd%.0s' $(seq 100))"
long_id=r2-$(printf 'x%.0s' $(seq 61))
make_config '["sh", "-c", "echo out; echo err >&2; touch /ro-test 2>/dev/null || echo ro-root; exit 1"]'
timeout 600 "$stratus" --root "$deep" run --keep --bundle "$bundle" "$long_id" </dev/null \
	>"$work/r2.out" 2>"$work/r2.err"
expect_eq "run exit 1: status" 1 $?
expect_eq "run exit 1: stdout (root.readonly refused a write)" "out ro-root" \
	"$(tr '\n' ' ' <"$work/r2.out" | sed 's/ $//')"
expect_eq "root.readonly: nothing written to the bundle's rootfs" no \
	"$([ -e "$bundle/rootfs/ro-test" ] && echo yes || echo no)"
expect_eq "run exit 1: stderr" "err" "$(cat "$work/r2.err")"
expect_eq "run --keep: the container stays, stopped" stopped \
	"$("$stratus" --root "$deep" state "$long_id" | jq -r .status)"
"$stratus" --root "$deep" delete "$long_id"
expect_eq "delete of the kept container" 0 $?
rm -rf "$root/deeper"
expect_nothing_left "run exit 1"

# 3. the lifecycle verbs on one container, with a writable rootfs and bind mounts
mkdir -p "$work/host/rw" "$work/host/ro" "$work/host/etc"
echo "from the host" >"$work/host/rw/in-rw"
echo "read only" >"$work/host/ro/in-ro"
printf '10.9.8.7\tstratus-test-host\n' >"$work/host/etc/hosts"
echo "nameserver 192.0.2.53" >"$work/host/etc/resolv.conf"
echo "not bound" >"$work/host/etc/secret"
make_config '["sh", "-c", "echo started; exec sleep 1000"]' \
	"| .annotations = {\"org.example.test\": \"yes\"} | .hooks = {\"poststop\": [$(hook poststop-c1)]}
	 | .root.readonly = false | .mounts += [
	{\"destination\": \"/mnt/rw\", \"type\": \"bind\", \"source\": \"$work/host/rw\", \"options\": [\"rbind\"]},
	{\"destination\": \"/mnt/ro\", \"source\": \"$work/host/ro\", \"options\": [\"bind\", \"ro\"]},
	{\"destination\": \"/etc/hosts\", \"type\": \"bind\", \"source\": \"$work/host/etc/hosts\", \"options\": [\"rbind\", \"ro\"]},
	{\"destination\": \"/etc/resolv.conf\", \"type\": \"bind\", \"source\": \"$work/host/etc/resolv.conf\", \"options\": [\"rbind\"]}]"
rm -f "$bundle/rootfs/written-in-guest"
timeout 600 "$stratus" --root "$root" create --bundle "$bundle" --pid-file "$work/c1.pid" c1 \
	</dev/null >"$work/c1.out" 2>"$work/c1.err"
expect_eq "create: exit 0" 0 $?
S state c1 >"$work/state.json"
expect_eq "state after create: status" created "$(jq -r .status "$work/state.json")"
expect_valid "state (created) valid against state-schema.json" state-schema.json "$work/state.json"
expect_eq "state: pid is the --pid-file PID" "$(cat "$work/c1.pid")" "$(jq -r .pid "$work/state.json")"
expect_eq "state: bundle" "$bundle" "$(jq -r .bundle "$work/state.json")"
expect_eq "state: annotations" yes "$(jq -r '.annotations["org.example.test"]' "$work/state.json")"
expect_eq "state: ociVersion and id" "$(jq -r .ociVersion "$bundle/config.json") c1" \
	"$(jq -r '.ociVersion + " " + .id' "$work/state.json")"
monitor=$(cat "$work/c1.pid")
expect_eq "the monitor is alive and setsid" "$monitor" "$(ps -o sid= -p "$monitor" | tr -d ' ')"
expect_eq "list -q" c1 "$(S list -q)"
expect_eq "list json" created "$(S list --format json | jq -r '.[0].status')"
S start c1
expect_eq "start: exit 0" 0 $?
expect_eq "state after start" running "$(S state c1 | jq -r .status)"
S state c1 >"$work/state.json"
expect_valid "state (running) valid against state-schema.json" state-schema.json "$work/state.json"
# The monitor (the container's VMM) holds no capability and has no_new_privs once the VM is
# built; its vCPU thread and the rootfs share's process run under seccomp filters.
mpid=$(jq -r .pid "$work/state.json")
expect_grep "monitor: no effective capability" '^CapEff:[[:space:]]+0+$' "/proc/$mpid/status"
expect_grep "monitor: no_new_privs" '^NoNewPrivs:[[:space:]]+1$' "/proc/$mpid/status"
vcpu_status=$(grep -l '^Name:[[:space:]]*vcpu0' /proc/"$mpid"/task/*/status | head -n 1)
expect_grep "monitor: its vCPU thread is filtered" '^Seccomp:[[:space:]]+2$' "${vcpu_status:-/dev/null}"
fsproc=$(for p in $(cat /proc/"$mpid"/task/*/children 2>/dev/null); do
	grep -q '^Name:[[:space:]]*fs-' "/proc/$p/status" 2>/dev/null && echo "$p"; done | head -n 1)
expect_grep "monitor: the rootfs share's process is filtered" '^Seccomp:[[:space:]]+2$' \
	"/proc/${fsproc:-0}/status"
wait_for '^started$' "$work/c1.out" 60
expect_grep "the init's stdout reached create's stdout" '^started$' "$work/c1.out"
expect_failure "start twice" 1 '^stratus: start: container "c1" is running, not created' S start c1
S ps c1 >"$work/ps.txt"
expect_grep "ps table: the init, as root" '^0 +[0-9]+ +[0-9]+ +[^ ]' "$work/ps.txt"
expect_eq "ps json: a list of PIDs" number "$(S ps --format json c1 | jq -r '.[0] | type')"
expect_eq "exec echo" "from exec" "$(S exec c1 echo from exec </dev/null)"
S exec c1 sh -c 'echo guest-data >/written-in-guest' </dev/null
expect_eq "virtio-fs rootfs: a file written in the container is in the bundle's rootfs" guest-data \
	"$(cat "$bundle/rootfs/written-in-guest" 2>&1)"
rm -f "$bundle/rootfs/written-in-guest"
expect_eq "bind rw directory: the host file is visible" "from the host" \
	"$(S exec c1 cat /mnt/rw/in-rw </dev/null)"
S exec c1 sh -c 'echo from-guest >/mnt/rw/out' </dev/null
expect_eq "bind rw directory: the container's write reaches the host" from-guest \
	"$(cat "$work/host/rw/out" 2>&1)"
expect_eq "bind ro directory: visible" "read only" "$(S exec c1 cat /mnt/ro/in-ro </dev/null)"
expect_failure "bind ro directory: a write is refused" 1 "Read-only file system" \
	S exec c1 touch /mnt/ro/new
expect_eq "bind ro directory: nothing written on the host" no \
	"$([ -e "$work/host/ro/new" ] && echo yes || echo no)"
expect_eq "bind file: /etc/hosts is the host file" "$(cat "$work/host/etc/hosts")" \
	"$(S exec c1 cat /etc/hosts </dev/null)"
expect_eq "bind file: /etc/resolv.conf from the same host directory" "nameserver 192.0.2.53" \
	"$(S exec c1 cat /etc/resolv.conf </dev/null)"
expect_failure "bind file ro: a write to /etc/hosts is refused" 1 "Read-only file system" \
	S exec c1 touch /etc/hosts
S exec c1 sh -c 'echo "search example.test" >>/etc/resolv.conf' </dev/null
expect_eq "bind file rw: the container's write reaches the host file" "search example.test" \
	"$(tail -n 1 "$work/host/etc/resolv.conf")"
expect_eq "bind file: the parent's share is covered by a tmpfs in the container" tmpfs \
	"$(S exec c1 sh -c "grep ' /dev/.stratus-shares ' /proc/self/mountinfo | tail -n 1" </dev/null |
		sed 's/.* - //' | cut -d' ' -f1)"
expect_eq "bind file: the parent directory's other files stay hidden" hidden \
	"$(S exec c1 sh -c 'cat /dev/.stratus-shares/*/secret 2>/dev/null || echo hidden' </dev/null)"
S exec c1 sh -c 'exit 42' </dev/null
expect_eq "exec exit status" 42 $?
S exec c1 sh -c 'kill -9 $$' </dev/null
expect_eq "exec killed by SIGKILL: 137" 137 $?
expect_eq "exec stdin" "piped in" "$(echo "piped in" | S exec c1 cat)"
expect_eq "exec --env --cwd --user" "B=2 /tmp 1000" \
	"$(S exec --env B=2 --cwd /tmp --user 1000:1000 c1 sh -c 'echo B=$B $(pwd) $(id -u)' </dev/null)"
S exec --detach --pid-file "$work/exec.pid" c1 sh -c 'sleep 1; echo detached >/dev/shm/d' </dev/null
expect_eq "exec --detach: exit 0" 0 $?
expect_eq "exec --detach: pid file" 1 "$(grep -c '^[0-9][0-9]*$' "$work/exec.pid")"
for i in $(seq 60); do S exec c1 cat /dev/shm/d </dev/null 2>/dev/null | grep -q detached && break; sleep 1; done
expect_eq "exec --detach: the process ran" detached "$(S exec c1 cat /dev/shm/d </dev/null)"
S events --stats c1 >"$work/events.json"
expect_eq "events --stats: a stats event" "stats c1" "$(jq -r '.type + " " + .id' "$work/events.json")"
echo '{"pids": {"limit": 77}}' | S update --resources - c1
expect_eq "update --resources -: exit 0" 0 $?
expect_eq "update: the pids limit reached the container's cgroup" 77 \
	"$(S events --stats c1 | jq -r .data.pids.limit)"
expect_failure "update with nothing to update" 1 "^stratus: update: nothing to update: give --resources" \
	S update c1
# runc's flags, parsed as runc does, overriding the file's fields; seen from inside the container
echo '{"pids": {"limit": 10}, "cpu": {"shares": 512}}' >"$work/resources.json"
S update --resources "$work/resources.json" --pids-limit 66 --memory 48m --memory-swap -1 \
	--cpu-quota 50000 --cpu-period 100000 --cpuset-cpus 0 c1
expect_eq "update with runc's flags: exit 0" 0 $?
expect_eq "update: pids.max, memory.max, cpu.max, cpu.weight, cpuset.cpus in the container" \
	"66 50331648 50000 100000 59 0" \
	"$(S exec c1 cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max \
		/sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpuset.cpus </dev/null | tr '\n' ' ' | sed 's/ $//')"
S update --cpu-period 200000 c1
expect_eq "update --cpu-period alone keeps the quota" "50000 200000" "$(S exec c1 cat /sys/fs/cgroup/cpu.max </dev/null)"
S update --memory -1 --pids-limit -1 c1
expect_eq "update -1: unlimited again" "max max" \
	"$(S exec c1 cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max </dev/null | tr '\n' ' ' | sed 's/ $//')"
vm_mib=$(jq -r .stratus.vmMemoryMiB "$root/c1/state.json")
expect_failure "update --memory beyond the VM" 1 \
	"^stratus: update: memory.limit: 4096 MiB is more than the VM's $vm_mib MiB" S update --memory 4g c1
expect_failure "update --cpuset-cpus beyond the VM's vCPUs" 1 \
	"^stratus: update: cpu.cpus: CPU 7: the VM has [0-9]+ vCPU" S update --cpuset-cpus 0,7 c1
expect_failure "update --memory-swap: no swap in the VM" 1 \
	"^stratus: update: memory.swap \(--memory-swap\): the VM has no swap" S update --memory-swap 1g c1
expect_failure "update --kernel-memory: obsolete" 1 "^stratus: update: --kernel-memory: kernel memory limits are obsolete" \
	S update --kernel-memory 10m c1
expect_failure "update --cpu-rt-period: no cgroup v2 interface" 1 \
	"^stratus: update: --cpu-rt-period: the real-time CPU scheduler has no cgroup v2" \
	S update --cpu-rt-period 1000 c1
expect_failure "update --mem-bw-schema: no RDT in a VM" 1 "^stratus: update: --mem-bw-schema: Intel RDT" \
	S update --mem-bw-schema MB:0=20 c1
expect_failure "update --memory with a bad size" 1 '^stratus: update: --memory: must be a size like 512m' \
	S update --memory 12q c1
expect_eq "refused updates changed nothing" "max max" \
	"$(S exec c1 cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max </dev/null | tr '\n' ' ' | sed 's/ $//')"
expect_eq "exec -t: stdin and stdout are a terminal" tty \
	"$(S exec -t c1 sh -c '[ -t 0 ] && [ -t 1 ] && echo tty' </dev/null | tr -d '\r')"
S exec --detach c1 sh -c 'trap "echo usr1 >/dev/shm/sig" USR1; echo up >/dev/shm/trap; while :; do sleep 0.2; done' </dev/null
for i in $(seq 100); do S exec c1 cat /dev/shm/trap </dev/null 2>/dev/null | grep -q up && break; sleep 0.3; done
S pause c1
expect_eq "pause: exit 0" 0 $?
expect_eq "state after pause" paused "$(S state c1 | jq -r .status)"
# "paused" is runc's own state, which runtime.md allows; the schema's enum has the spec's four
S state c1 >"$work/state.json"
expect_valid "state (paused) valid against state-schema.json plus \"paused\"" \
	--allow-status paused state-schema.json "$work/state.json"
expect_failure "exec while paused" 1 '^stratus: exec: container "c1" is paused' S exec c1 true
expect_failure "update while paused" 1 '^stratus: update: container "c1" is paused \(its VM.s vCPUs are stopped\): resume it first' \
	S update --pids-limit 5 c1
S kill --all c1 USR1
expect_eq "kill while paused: exit 0 (the signal waits for resume, as runc's frozen cgroup)" \
	"0 paused" "$? $(S state c1 | jq -r .status)"
S resume c1
expect_eq "resume: exit 0" 0 $?
expect_eq "state after resume" running "$(S state c1 | jq -r .status)"
for i in $(seq 100); do S exec c1 cat /dev/shm/sig </dev/null 2>/dev/null | grep -q usr1 && break; sleep 0.3; done
expect_eq "the signal sent while paused arrived at resume" usr1 "$(S exec c1 cat /dev/shm/sig </dev/null)"
expect_eq "exec after resume" ok "$(S exec c1 echo ok </dev/null)"
expect_failure "delete while running" 1 '^stratus: delete: container "c1" is running: stop it first or use --force' \
	S delete c1
S exec --detach c1 sleep 1000 </dev/null
S kill --all c1 KILL
expect_eq "kill --all KILL: exit 0" 0 $?
for i in $(seq 100); do alive "$monitor" || break; sleep 0.2; done
expect_eq "the monitor exits with the container" gone "$(alive "$monitor" && echo alive || echo gone)"
expect_eq "state after the exit" "stopped 0" "$(S state c1 | jq -r '.status + " " + (.pid|tostring)')"
S state c1 >"$work/state.json"
expect_valid "state (stopped) valid against state-schema.json" state-schema.json "$work/state.json"
expect_failure "kill of a stopped container" 1 '^stratus: kill: container "c1" is stopped' S kill c1
S delete c1
expect_eq "delete: exit 0" 0 $?
expect_grep "poststop hook at delete" '^poststop-c1: .*"id":"c1"' "$work/hooks.log"
expect_nothing_left "create/start/kill/delete"

# 4. run in the background, killed with SIGKILL: 137; a block-device rootfs on request
if command -v mkfs.ext4 >/dev/null; then
	"$here/rootfs/make-busybox-rootfs.sh" "$work/blk-tree" --ext4 "$work/rootfs.img" >/dev/null ||
		fail "build the busybox ext4 image"
	make_config '["sleep", "1000"]' '| .annotations = {"io.stratus.rootfs.block": "'"$work/rootfs.img"'"}'
else
	make_config '["sleep", "1000"]'
fi
timeout 600 "$stratus" --root "$root" run --bundle "$bundle" r4 </dev/null >"$work/r4.out" 2>&1 &
runner=$!
for i in $(seq 600); do [ "$(S state r4 2>/dev/null | jq -r .status)" = running ] && break; sleep 0.2; done
if [ -f "$work/rootfs.img" ]; then
	expect_eq "io.stratus.rootfs.block: the root is the read-only ext4 disk" "/dev/vda ext4 ro" \
		"$(S exec r4 sh -c "grep ' / ' /proc/mounts | tail -n 1" </dev/null | cut -d' ' -f1,3,4 | cut -d, -f1)"
fi
# paused first: SIGKILL does not wait for resume (a frozen cgroup's tasks die too), the VM goes
S pause r4
S kill r4 9
expect_eq "kill 9 of a paused container: exit 0" 0 $?
wait $runner
expect_eq "run killed by SIGKILL while paused: exit 137" 137 $?
expect_nothing_left "run killed"

# 5. delete --force of a running container
timeout 600 "$stratus" --root "$root" run --detach --bundle "$bundle" r5 </dev/null >/dev/null 2>&1
expect_eq "run --detach: exit 0" 0 $?
monitor=$(S state r5 | jq -r .pid)
expect_eq "run --detach: running" running "$(S state r5 | jq -r .status)"
S delete --force r5
expect_eq "delete --force: exit 0" 0 $?
expect_eq "delete --force: the monitor is gone" gone "$(alive "$monitor" && echo alive || echo gone)"
expect_nothing_left "delete --force"

# 5b. the monitor in the container's host cgroup (docs/runtime.md "Host cgroup"), in every
# mounted hierarchy: on a hybrid host each v1 controller (memory:, pids: are checked) and the
# unified one (0::). cgroupfs with a relative path (below our own cgroup in each v1
# hierarchy, below its parent on a pure v2 host) and --systemd-cgroup's slice:prefix:name;
# no warning; the directories create made are gone after delete. Not root, or no cgroup
# mount we can write: skipped.
cgtag=stratus-test-$$-$RANDOM
cgfirst=$(cg_mount memory)
cgfirst=${cgfirst:-$(cg_mount "")}
if [ "$(id -u)" != 0 ] || [ -z "$cgfirst" ] || ! mkdir "$cgfirst/$cgtag" 2>/dev/null; then
	echo "SKIP (section 5b): not root or no writable cgroup mount"
else
	rmdir "$cgfirst/$cgtag"
	# the hierarchies checked: memory, pids and cgroup v2 ("v2"), those this host has
	cgh() { [ "$1" = v2 ] || echo "$1"; }
	cghiers=
	for h in memory pids v2; do
		[ -n "$(cg_mount "$(cgh $h)")" ] && [ -n "$(cg_of "$(cgh $h)" /proc/self/cgroup)" ] &&
			cghiers="$cghiers $h"
	done
	# a pure v2 host: a relative path is below the parent of our cgroup (runc's fs2)
	cgunified=; grep -q ' - cgroup ' /proc/self/mountinfo || cgunified=1
	for form in cgroupfs systemd; do
		make_config '["sleep", "1000"]'
		flags=
		if [ $form = cgroupfs ]; then
			jq ".linux.cgroupsPath = \"$cgtag/c1\"" "$bundle/config.json" >"$work/cg.json"
		else
			jq ".linux.cgroupsPath = \"system.slice:stratus-test:$cgtag\"" \
				"$bundle/config.json" >"$work/cg.json"
			flags=--systemd-cgroup
		fi
		mv "$work/cg.json" "$bundle/config.json"
		declare -A cgwant=() cggone=()
		for h in $cghiers; do
			own=$(cg_of "$(cgh $h)" /proc/self/cgroup)
			if [ $form = systemd ]; then
				cgwant[$h]=/system.slice/stratus-test-$cgtag.scope
				[ -d "$(cg_mount "$(cgh $h)")/system.slice" ] && cggone[$h]=${cgwant[$h]} ||
					cggone[$h]=/system.slice
			else
				[ -n "$cgunified" ] && own=$(dirname "$own")
				own=${own%/}
				cgwant[$h]=$own/$cgtag/c1 cggone[$h]=$own/$cgtag
			fi
		done
		timeout 600 "$stratus" --root "$root" $flags create --bundle "$bundle" cg \
			</dev/null >"$work/cg.out" 2>&1
		expect_eq "host cgroup ($form): create exits 0" 0 $?
		expect_eq "host cgroup ($form): no warning" "" "$(cat "$work/cg.out")"
		monitor=$(S state cg | jq -r .pid)
		for h in $cghiers; do
			expect_eq "host cgroup ($form): the monitor's $h cgroup" "${cgwant[$h]}" \
				"$(cg_of "$(cgh $h)" "/proc/$monitor/cgroup" 2>/dev/null)"
		done
		S delete --force cg >"$work/cg.out" 2>&1
		expect_eq "host cgroup ($form): delete exits 0" 0 $?
		expect_eq "host cgroup ($form): delete, no warning" "" "$(cat "$work/cg.out")"
		for h in $cghiers; do
			d=$(cg_mount "$(cgh $h)")${cggone[$h]}
			expect_eq "host cgroup ($form): $d made by create is gone" gone \
				"$([ -e "$d" ] && echo left || echo gone)"
		done
		expect_nothing_left "host cgroup ($form)"
		unset cgwant cggone
	done
	make_config '["true"]' '| .linux.cgroupsPath = "a.slice:p"'
	expect_failure "host cgroup: a bad systemd form" 1 \
		'^stratus: config.json: linux.cgroupsPath: must be slice:prefix:name with the systemd cgroup manager, not "a.slice:p"$' \
		"$stratus" --root "$root" --systemd-cgroup create --bundle "$bundle" bad
	expect_nothing_left "host cgroup: a bad systemd form"
	expect_eq "host cgroup: a bad systemd form makes no directory" gone \
		"$([ -e "$cgfirst/a.slice" ] && echo left || echo gone)"
fi

# 6. a terminal through --console-socket
make_config '["sh"]' '| .process.terminal = true'
python3 "$here/cli/console-socket.py" "$work/console.sock" "$work/tty.out" \
	'[ -t 0 ] && [ -t 1 ] && echo is-a-tty; echo tty-$((6*7)); exit 7' &
receiver=$!
for i in $(seq 50); do [ -S "$work/console.sock" ] && break; sleep 0.1; done
timeout 600 "$stratus" --root "$root" run --console-socket "$work/console.sock" --bundle "$bundle" r6 \
	</dev/null >"$work/r6.out" 2>&1
expect_eq "terminal: run exits with the shell's status" 7 $?
wait $receiver
expect_grep "terminal: the shell's stdin and stdout are a terminal" '^is-a-tty' "$work/tty.out"
expect_grep "terminal: input reached it, output came back" '^tty-42' "$work/tty.out"
expect_nothing_left "terminal"

# 7. the VM ends under a running container (QMP quit): the monitor exits 255 at once
make_config '["sleep", "1000"]'
timeout 600 "$stratus" --root "$root" run --bundle "$bundle" r7 </dev/null >/dev/null 2>&1 &
runner=$!
for i in $(seq 600); do [ "$(S state r7 2>/dev/null | jq -r .status)" = running ] && break; sleep 0.2; done
start=$SECONDS
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
for cmd in ("qmp_capabilities", "quit"):
    f.write("{\"execute\": \"%s\"}\n" % cmd)
    f.flush()
    f.readline()
' "$root/r7/qmp.sock"
wait $runner
expect_eq "VM gone under the container: run exits 255" 255 $?
expect_eq "VM gone under the container: within 30 s" yes "$([ $((SECONDS - start)) -lt 30 ] && echo yes)"
expect_nothing_left "VM gone"

# 8. racing verbs (docs/runtime.md "Locking"): outcomes, not timing
make_config '["sleep", "1000"]'
for i in $(seq 10); do
	timeout 600 "$stratus" --root "$root" create --bundle "$bundle" r8 </dev/null >/dev/null \
		2>"$work/race-create-$i.err" &
	pids[$i]=$!
done
won=0 lost=0
for i in $(seq 10); do
	if wait "${pids[$i]}"; then won=$((won + 1)); elif [ "$(cat "$work/race-create-$i.err")" = \
		'stratus: container "r8" already exists' ]; then lost=$((lost + 1)); fi
done
expect_eq "10 racing creates of one ID: one wins, 9 fail with \"already exists\"" "1 9" "$won $lost"
expect_eq "racing creates: one container, created" "r8 created" \
	"$(S list --format json | jq -r '.[] | .id + " " + .status' | tr '\n' ' ' | sed 's/ $//')"
monitors=0 # forked, not exec'd: the create's command line, comm "stratus-monitor"
for p in $(pgrep -f -- "--root $root create --bundle $bundle r8"); do
	[ "$(cat "/proc/$p/comm" 2>/dev/null)" = stratus-monitor ] && monitors=$((monitors + 1))
done
expect_eq "racing creates: one monitor" 1 "$monitors"
S start r8 >"$work/race-start-1.out" 2>&1 &
p1=$!
S start r8 >"$work/race-start-2.out" 2>&1 &
p2=$!
wait $p1
s1=$?
wait $p2
s2=$?
expect_eq "two racing starts: one succeeds" 1 $(((s1 == 0) + (s2 == 0)))
expect_eq "two racing starts: the other is refused" 'stratus: start: container "r8" is running, not created' \
	"$(cat "$work/race-start-1.out" "$work/race-start-2.out")"
for i in $(seq 4); do
	S pause r8 >/dev/null 2>&1 &
	S resume r8 >/dev/null 2>&1 &
	S update --pids-limit $((100 + i)) r8 >"$work/race-update-$i.out" 2>&1 &
done
wait
status=$(S state r8 | jq -r .status)
[ "$status" = paused ] && S resume r8
expect_eq "racing pause/resume/update: the state says what the VM does (exec answers)" ok \
	"$(timeout 120 "$stratus" --root "$root" exec r8 echo ok </dev/null 2>&1)"
ok=0
for i in $(seq 4); do # applied (no output), or refused because a racing pause won
	if [ ! -s "$work/race-update-$i.out" ] || grep -Eq \
		'^stratus: update: container "r8" is paused \(its VM.s vCPUs are stopped\): resume it first$' \
		"$work/race-update-$i.out"; then ok=$((ok + 1)); fi
done
expect_eq "racing updates: each either applied or refused while paused" 4 "$ok"
expect_eq "racing updates: pids.max is one of them" yes \
	"$(S exec r8 cat /sys/fs/cgroup/pids.max </dev/null | grep -qE '^(max|10[1-4])$' && echo yes)"
# a held lock: a changing verb waits, then fails with one line; reading verbs do not wait
flock "$root/r8/lock" sleep 4 &
locker=$!
sleep 0.5
STRATUS_LOCK_TIMEOUT=1 expect_failure "a held lock: pause times out" 1 \
	'^stratus: container "r8" is locked by another stratus command \(waited 1 s; STRATUS_LOCK_TIMEOUT\)$' \
	S pause r8
expect_eq "a held lock: state still answers" running "$(S state r8 | jq -r .status)"
wait $locker
# the agent takes 8 control connections; each detached exec's relay holds one: a 9th must
# not replace the monitor's (it did: the VM ended with 255, "Connection reset by peer")
for i in $(seq 8); do S exec --detach r8 sleep 600 </dev/null; done
expect_eq "8 detached execs and one more exec: the container lives on" "ok running" \
	"$(S exec r8 echo ok </dev/null) $(S state r8 | jq -r .status)"
monitor=$(S state r8 | jq -r .pid)
S kill r8 KILL >"$work/race-kill.out" 2>&1 &
p1=$!
S delete --force r8 >"$work/race-delete.out" 2>&1
expect_eq "delete --force racing kill: delete succeeds" 0 $?
wait $p1
s1=$?
expect_eq "delete --force racing kill: kill succeeded or found the container gone" yes \
	"$({ [ $s1 = 0 ] || grep -Eq '^stratus: (container "r8" does not exist|kill: container "r8" is stopped)$' \
		"$work/race-kill.out"; } && echo yes)"
for i in $(seq 100); do alive "$monitor" || break; sleep 0.1; done
expect_eq "delete --force racing kill: the monitor is gone" gone "$(alive "$monitor" && echo alive || echo gone)"
expect_nothing_left "racing verbs"

# 9. pods: cli/pod.sh
source "$here/cli/pod.sh"

# 10. VM templates: cli/templates.sh
source "$here/cli/templates.sh"

finish
