#!/bin/bash
# make-busybox-image.sh: a local OCI image of the static busybox, no registry, written by
# hand: one uncompressed layer tar, the image config, the manifest and an OCI image layout,
# packed as an oci-archive tar that `podman load` and `ctr images import` both read.
#
# Usage: tests/integration/peers/make-busybox-image.sh OUT.tar [--name REF] [--layout DIR]
#
# The layer is tests/integration/rootfs/make-busybox-rootfs.sh's tree (busybox, a link per
# applet, /etc/passwd, /etc/group, /etc/hosts), every entry owned by 0:0 (/home/user by
# 1000:1000) with mtime 0, sorted: the same bytes, hence the same digests, on every run.
# Config: Cmd ["sh"], Env PATH, WorkingDir /. REF (default localhost/stratus-busybox:latest)
# is put in index.json as io.containerd.image.name (ctr) and org.opencontainers.image.ref.name
# (podman). --layout DIR also keeps the unpacked OCI image layout. Prints the manifest
# digest. Needs busybox-static, GNU tar, sha256sum.
set -euo pipefail

die() { echo "make-busybox-image: error: $*" >&2; exit 1; }
usage="usage: $0 OUT.tar [--name REF] [--layout DIR]"

here=$(cd "$(dirname "$0")" && pwd)
out= name=localhost/stratus-busybox:latest layout=
while [[ $# -gt 0 ]]; do
	case $1 in
	--name) [[ $# -ge 2 && $2 =~ ^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]+)?$ ]] ||
		die "--name: needs an image reference like localhost/busybox:latest"
		name=$2; shift ;;
	--layout) [[ $# -ge 2 ]] || die "--layout: needs DIR"; layout=$2; shift ;;
	-*) die "unknown option $1" ;;
	*) [[ -z $out ]] || die "$usage"; out=$1 ;;
	esac
	shift
done
[[ -n $out ]] || die "$usage"
[[ $name == *:* ]] || name=$name:latest
if [[ -n $layout && -e $layout ]] && [[ -n $(ls -A "$layout") ]]; then
	die "--layout: $layout exists and is not empty"
fi

tmp=$(mktemp -d /tmp/stratus-image.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$here/../rootfs/make-busybox-rootfs.sh" "$tmp/rootfs"

oci=$tmp/oci
mkdir -p "$oci/blobs/sha256"
# blob FILE: moves FILE into blobs/sha256/<digest> and prints "DIGEST SIZE"
blob() {
	local d s
	d=$(sha256sum "$1" | cut -d' ' -f1)
	s=$(stat -c %s "$1")
	mv "$1" "$oci/blobs/sha256/$d"
	echo "$d $s"
}

# Reproducible layer: sorted names, numeric root ownership, mtime 0, no pax atime/ctime.
owners=$tmp/owners
printf '%s\n' home/user >"$owners"
tar -C "$tmp/rootfs" --sort=name --format=gnu --numeric-owner --owner=0 --group=0 \
	--mtime=@0 -cf "$tmp/layer.tar" --exclude=./home/user .
tar -C "$tmp/rootfs" --format=gnu --numeric-owner --owner=1000 --group=1000 --mtime=@0 \
	--no-recursion -rf "$tmp/layer.tar" ./home/user
read -r layer_digest layer_size < <(blob "$tmp/layer.tar")

arch=amd64
case $(uname -m) in aarch64) arch=arm64 ;; x86_64) arch=amd64 ;; *) arch=$(uname -m) ;; esac
printf '%s' '{"created":"1970-01-01T00:00:00Z","architecture":"'"$arch"'","os":"linux",'\
'"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],'\
'"Cmd":["sh"],"WorkingDir":"/"},'\
'"rootfs":{"type":"layers","diff_ids":["sha256:'"$layer_digest"'"]},'\
'"history":[{"created":"1970-01-01T00:00:00Z","created_by":"make-busybox-image.sh"}]}' \
	>"$tmp/config.json"
read -r config_digest config_size < <(blob "$tmp/config.json")

printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'\
'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'\
"$config_digest"'","size":'"$config_size"'},'\
'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'\
"$layer_digest"'","size":'"$layer_size"'}]}' >"$tmp/manifest.json"
read -r manifest_digest manifest_size < <(blob "$tmp/manifest.json")

printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
printf '%s' '{"schemaVersion":2,"manifests":[{"mediaType":'\
'"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest_digest"'",'\
'"size":'"$manifest_size"',"platform":{"architecture":"'"$arch"'","os":"linux"},'\
'"annotations":{"io.containerd.image.name":"'"$name"'",'\
'"org.opencontainers.image.ref.name":"'"$name"'"}}]}' >"$oci/index.json"

find "$oci" -exec touch -h -d @0 {} +
tar -C "$oci" --sort=name --format=gnu --numeric-owner --owner=0 --group=0 --mtime=@0 \
	-cf "$tmp/out.tar" oci-layout index.json blobs
mv "$tmp/out.tar" "$out"
if [[ -n $layout ]]; then
	mkdir -p "$layout"
	cp -a "$oci/." "$layout/"
fi
echo "sha256:$manifest_digest"
