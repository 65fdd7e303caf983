#!/bin/bash
# build-kernel.sh: build the stratus guest kernel (an uncompressed, stripped
# vmlinux with a PVH entry point) from Debian's linux-source-6.1.
#
# Usage: guest-kernel-config/build-kernel.sh [OUT]
#
# The kernel is `make tinyconfig` + stratus.config + `make olddefconfig`, with
# patches/*.patch applied in order. The result is cached as
# $STRATUS_CACHE/vmlinux-<hash> (default cache: ~/.cache/stratus), where hash
# is the sha256 of the fragment, the patches, this script and the
# linux-source-6.1 package version; a run with the same inputs only prints the
# path. The final .config and System.map are kept next to it as
# vmlinux-<hash>.config and vmlinux-<hash>.map (for reading oopses).
#
# The last line on stdout is the path of the cached vmlinux; with OUT, the
# vmlinux is also copied there (to OUT/vmlinux if OUT is a directory).
# Progress and build output go to stderr.
# STRATUS_KEEP_BUILD=1 keeps the build tree after a successful build (it is
# always kept after a failure, for inspection).
set -euo pipefail

readonly SRC_PKG=linux-source-6.1
readonly SRC_TARBALL=/usr/src/linux-source-6.1.tar.xz
readonly SRC_DIR_NAME=linux-source-6.1
readonly KARCH=x86_64

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script="$here/$(basename "${BASH_SOURCE[0]}")"
fragment="$here/stratus.config"
cache=${STRATUS_CACHE:-$HOME/.cache/stratus}
out=${1:-}
[[ -n $out && -d $out ]] && out="$out/vmlinux"
patches=()

# Settings that would send kbuild elsewhere or change the toolchain.
unset KBUILD_OUTPUT KCONFIG_CONFIG KCONFIG_ALLCONFIG CROSS_COMPILE LLVM O

log() { echo "build-kernel: $*" >&2; }
die() { echo "build-kernel: error: $*" >&2; exit 1; }

# Copy the cached vmlinux to OUT (atomically) if asked, then print its path.
finish() {
	local vmlinux=$1
	if [[ -n $out ]]; then
		mkdir -p "$(dirname "$out")"
		cp "$vmlinux" "$out.tmp.$$"
		mv -f "$out.tmp.$$" "$out"
		log "copied to $out"
	fi
	echo "$vmlinux"
}

# The hash covers everything that decides the output.
input_hash() {
	local version=$1 patch
	{
		printf 'source %s %s\n' "$SRC_PKG" "$version"
		printf 'script\n'
		cat "$script"
		printf 'fragment\n'
		cat "$fragment"
		for patch in "${patches[@]}"; do
			printf 'patch %s\n' "$(basename "$patch")"
			cat "$patch"
		done
	} | sha256sum | cut -d' ' -f1
}

# Every CONFIG_ line of the fragment must hold in the final .config: "=value"
# lines exactly, "is not set" lines as not set or absent (unmet dependencies),
# but a symbol that Kconfig does not know at all is an error (a typo, or an
# option renamed in this kernel version).
check_config() {
	local config=$1 symbols=$2 line name want got bad=0
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			name=${BASH_REMATCH[1]}
			want="$name=${BASH_REMATCH[2]}"
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			name=${BASH_REMATCH[1]}
			want="# $name is not set"
		else
			continue
		fi
		got=$(grep -E "^(# )?${name}[= ]" "$config" || true)
		if [[ $want == "# "* ]]; then
			if [[ -z $got ]] && ! grep -qx "${name#CONFIG_}" "$symbols"; then
				log "config: $name: no such option in this kernel"
				bad=1
			elif [[ -n $got && $got != "$want" ]]; then
				log "config: $name: fragment wants it off, got '$got'"
				bad=1
			fi
		elif [[ $got != "$want" ]]; then
			log "config: $name: fragment wants '$want', got '${got:-<absent>}'"
			bad=1
		fi
	done <"$fragment"
	return $bad
}

configure() {
	local src=$1
	make -C "$src" ARCH=$KARCH tinyconfig >&2
	"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$fragment" >&2
	make -C "$src" ARCH=$KARCH olddefconfig >&2
	grep -rhoE --include='Kconfig*' '^[[:space:]]*(menu)?config[[:space:]]+[A-Za-z0-9_]+' "$src" |
		awk '{ print $2 }' | sort -u >"$src/.stratus-kconfig-symbols"
	check_config "$src/.config" "$src/.stratus-kconfig-symbols" ||
		die "the final .config does not match $fragment (see above)"
}

# XEN_ELFNOTE_PHYS32_ENTRY (18): the PVH entry point a VMM boots vmlinux with.
has_pvh_note() {
	readelf -W -n "$1" | grep -E '^[[:space:]]*Xen[[:space:]]' | grep -qE '0x00000012|PHYS32_ENTRY'
}

main() {
	local version hash vmlinux work src start lockfd
	start=$(date +%s)

	shopt -s nullglob
	patches=("$here"/patches/*.patch)
	shopt -u nullglob

	version=$(dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null) ||
		die "$SRC_PKG is not installed (apt-get install $SRC_PKG)"
	[[ -r $SRC_TARBALL ]] || die "$SRC_TARBALL is missing"
	[[ -r $fragment ]] || die "$fragment is missing"

	hash=$(input_hash "$version")
	vmlinux="$cache/vmlinux-$hash"
	if [[ -f $vmlinux ]]; then
		finish "$vmlinux"
		return
	fi

	mkdir -p "$cache"
	exec {lockfd}>"$cache/kernel-build.lock"
	flock "$lockfd"
	if [[ -f $vmlinux ]]; then # built by a concurrent run
		finish "$vmlinux"
		return
	fi

	work="$cache/build-$hash"
	src="$work/$SRC_DIR_NAME"
	rm -rf "$work"
	mkdir -p "$work"
	log "building $SRC_PKG $version ($hash) in $work"
	tar -xf "$SRC_TARBALL" -C "$work"
	[[ -d $src ]] || die "$SRC_TARBALL did not contain $SRC_DIR_NAME/"

	for patch in "${patches[@]}"; do
		log "applying $(basename "$patch")"
		patch -d "$src" -p1 --forward --batch --quiet <"$patch" >&2 ||
			die "$(basename "$patch") does not apply"
	done

	configure "$src"
	log "configured; compiling with $(nproc) jobs"
	make -C "$src" ARCH=$KARCH -j"$(nproc)" \
		KBUILD_BUILD_USER=stratus KBUILD_BUILD_HOST=stratus vmlinux >&2

	has_pvh_note "$src/vmlinux" || die "vmlinux has no PVH entry note (CONFIG_PVH?)"
	cp "$src/vmlinux" "$work/vmlinux"
	strip --strip-all "$work/vmlinux"
	has_pvh_note "$work/vmlinux" || die "stripping lost the PVH entry note"
	log "vmlinux: $(stat -c %s "$src/vmlinux") bytes, $(stat -c %s "$work/vmlinux") stripped"

	cp "$src/.config" "$vmlinux.config"
	cp "$src/System.map" "$vmlinux.map"
	mv -f "$work/vmlinux" "$vmlinux"
	if [[ ${STRATUS_KEEP_BUILD:-0} == 1 ]]; then
		log "build tree kept in $work"
	else
		rm -rf "$work"
	fi
	log "done in $(($(date +%s) - start)) s"
	finish "$vmlinux"
}

main "$@"
