#!/bin/bash
# make-busybox-bundle.sh: a plain OCI bundle of the static busybox for runtimes driven
# directly (runc/crun/stratus run), e.g. tests/bench/oci_run.sh.
#
# Usage: tests/integration/peers/make-busybox-bundle.sh DIR [-- COMMAND [ARG...]]
#
# DIR/rootfs is tests/integration/rootfs/make-busybox-rootfs.sh's tree; DIR/config.json is
# the runtime spec's default (`runc spec`, else `crun spec`) with process.args COMMAND
# (default /bin/true), process.terminal false, the root file system writable and the
# hostname "busybox". DIR must not exist yet or be empty. Needs busybox-static, jq and runc
# or crun.
set -euo pipefail

die() { echo "make-busybox-bundle: error: $*" >&2; exit 1; }
usage="usage: $0 DIR [-- COMMAND [ARG...]]"

here=$(cd "$(dirname "$0")" && pwd)
[[ $# -ge 1 && $1 != -* ]] || die "$usage"
dir=$1
shift
args=(/bin/true)
if [[ $# -gt 0 ]]; then
	[[ $1 == -- && $# -ge 2 ]] || die "$usage"
	shift
	args=("$@")
fi
if [[ -e $dir ]] && [[ -n $(ls -A "$dir") ]]; then die "DIR $dir exists and is not empty"; fi
command -v jq >/dev/null || die "jq not found (apt-get install jq)"
if command -v runc >/dev/null; then spec=(runc spec); elif command -v crun >/dev/null; then
	spec=(crun spec)
else die "neither runc nor crun found: one of them writes the default config.json"; fi

mkdir -p "$dir"
"$here/../rootfs/make-busybox-rootfs.sh" "$dir/rootfs"
tmp=$(mktemp -d /tmp/stratus-bundle.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && "${spec[@]}") || die "${spec[*]} failed"
# COMMAND as a JSON array, one jq --arg per word (jq would take "-c" for its own option).
json_args=
for a in "${args[@]}"; do json_args+=${json_args:+,}$(jq -cn --arg a "$a" '$a'); done
jq --argjson args "[$json_args]" '.process.args = $args | .process.terminal = false |
	.root.readonly = false | .hostname = "busybox"' <"$tmp/config.json" \
	>"$dir/config.json" || die "jq could not adjust config.json"
