#!/usr/bin/env bash
# The one entry point for a fresh Debian 12 machine (see README):
#   ./dev.sh demo   install what is needed, build everything (guest kernel included),
#                   run a demo container in a microVM (stratus run, busybox rootfs)
#   ./dev.sh test   the same set-up, then every test: format check, unit tests (plain and
#                   under ASan+UBSan), bounded fuzz runs (STRATUS_FUZZ_SECONDS, 60 s each),
#                   integration tests that boot real microVMs
#   ./dev.sh setup  only the set-up
# Re-running is cheap: packages already installed are not reinstalled, the build is
# incremental and the guest kernel is cached under ~/.cache/stratus by the hash of its inputs.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${STRATUS_BUILD_DIR:-$top/build}
jobs=$(nproc)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
	local missing=() pkg
	while read -r pkg; do
		case $pkg in ''|'#'*) continue ;; esac
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$pkg")
	done <"$top/packaging/deps.txt"
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
}

build_all() {
	log "building stratus in $build"
	cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$build" -j "$jobs"
	log "guest kernel"
	"$top/guest-kernel-config/build-kernel.sh" "$build/vmlinux" >/dev/null
	log "test initramfs"
	"$top/tests/integration/initramfs/make-test-initramfs.sh" "$build/test-initramfs.cpio"
}

setup() {
	install_packages
	build_all
}

demo() {
	log "running a container in a microVM: stratus run, busybox rootfs"
	local d
	d=$(mktemp -d /tmp/stratus-demo.XXXXXX)
	# shellcheck disable=SC2064
	trap "rm -rf '$d'" RETURN
	"$top/tests/integration/rootfs/make-busybox-rootfs.sh" "$d/bundle/rootfs" >/dev/null
	(cd "$d/bundle" && "$build/stratus" spec)
	jq '.process.terminal = false |
	    .process.args = ["sh", "-c", "echo hello from a container in a stratus microVM; uname -sr; id"]' \
		"$d/bundle/config.json" >"$d/config.json" && mv "$d/config.json" "$d/bundle/config.json"
	"$build/stratus" --root "$d/state" run --bundle "$d/bundle" "demo-$$" </dev/null
}

check_kvm() {
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then return 0; fi
	if [ "${CI:-}" = true ]; then
		echo "dev.sh: /dev/kvm is missing or not accessible; CI must run the VM tests" >&2
		exit 1
	fi
	log "no usable /dev/kvm: VM tests will be skipped"
}

check_format() {
	log "format check (clang-format)"
	local bad
	bad=$(cd "$top" && git ls-files '*.c' '*.h' | while read -r f; do
		clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || echo "$f"
	done)
	if [ -n "$bad" ]; then
		echo "clang-format would change:" >&2
		echo "$bad" >&2
		return 1
	fi
}

run_tests() {
	check_kvm
	check_format
	log "unit tests"
	(cd "$build" && ctest -L unit --output-on-failure -j "$jobs")
	log "unit tests under ASan+UBSan"
	cmake -S "$top" -B "$build-asan" -DSTRATUS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build "$build-asan" -j "$jobs"
	(cd "$build-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest -L unit --output-on-failure -j "$jobs")
	log "fuzzing virtqueues for ${STRATUS_FUZZ_SECONDS:-60} s (libFuzzer, ASan+UBSan)"
	STRATUS_FUZZ_BUILD_DIR="$build-fuzz" "$top/tests/fuzz/run.sh" virtq "${STRATUS_FUZZ_SECONDS:-60}"
	log "fuzzing virtio-vsock for 45 s (libFuzzer, ASan+UBSan)"
	STRATUS_FUZZ_BUILD_DIR="$build-fuzz" "$top/tests/fuzz/run.sh" vsock 45
	log "fuzzing virtio-blk requests for ${STRATUS_FUZZ_SECONDS:-60} s"
	STRATUS_FUZZ_BUILD_DIR="$build-fuzz" "$top/tests/fuzz/run.sh" blk "${STRATUS_FUZZ_SECONDS:-60}"
	log "fuzzing the agent protocol decoder for 30 s"
	STRATUS_FUZZ_BUILD_DIR="$build-fuzz" "$top/tests/fuzz/run.sh" agent_proto 30
	log "fuzzing the agent's request path for 30 s"
	STRATUS_FUZZ_BUILD_DIR="$build-fuzz" "$top/tests/fuzz/run.sh" agent_request 30
	log "fuzzing config.json parsing for 30 s"
	STRATUS_FUZZ_BUILD_DIR="$build-fuzz" "$top/tests/fuzz/run.sh" oci_spec 30
	log "fuzzing the QMP protocol layer for 30 s"
	STRATUS_FUZZ_BUILD_DIR="$build-fuzz" "$top/tests/fuzz/run.sh" qmp 30
	log "fuzzing the shim's ttrpc server for 30 s"
	STRATUS_FUZZ_BUILD_DIR="$build-fuzz" "$top/tests/fuzz/run.sh" ttrpc 30
	log "fuzzing snapshot files for 30 s"
	STRATUS_FUZZ_BUILD_DIR="$build-fuzz" "$top/tests/fuzz/run.sh" snapshot 30
	log "fuzzing the virtio-fs FUSE server for 30 s"
	STRATUS_FUZZ_BUILD_DIR="$build-fuzz" "$top/tests/fuzz/run.sh" fuse 30
	log "fuzzing virtio-net for 30 s"
	STRATUS_FUZZ_BUILD_DIR="$build-fuzz" "$top/tests/fuzz/run.sh" net 30
	log "the VMM under ASan+UBSan against the freestanding guest"
	(cd "$build-asan" && ASAN_OPTIONS=detect_leaks=1 ctest -R "integration_vmm_stub|integration_qmp" --output-on-failure)
	log "integration tests (real microVMs)"
	(cd "$build" && STRATUS_KERNEL="$build/vmlinux" STRATUS_TEST_INITRAMFS="$build/test-initramfs.cpio" \
		ctest -L integration --output-on-failure)
}

case "${1:-}" in
setup) setup ;;
demo) setup; demo ;;
test) setup; run_tests ;;
*)
	echo "usage: $0 demo|test|setup" >&2
	exit 2
	;;
esac
