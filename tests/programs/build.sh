#!/bin/bash
# Build the e2e test clients into OUTDIR.
#
#   tests/programs/build.sh OUTDIR [go|rust|cenv|musl|muslfs]...   (default: all)
#
# Outputs: OUTDIR/go_client (static Go), OUTDIR/rust_client (static Rust,
# glibc crt-static), OUTDIR/env_printer (gcc -static), OUTDIR/musl_http and
# OUTDIR/musl_fs (musl-gcc -static). A program is rebuilt only when its
# source (or this script) is newer, so a second call is fast. Every output is
# checked to be really static (no PT_INTERP, no DT_NEEDED) and deleted if not.
#
# Exit status: 0 all requested programs built; 77 a toolchain is missing (the
# message names it; the other programs are still built); 1 a build failed.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [go|rust|cenv|musl|muslfs]..." >&2; exit 2; }
OUT=$1
shift
WANT=("$@")
[ ${#WANT[@]} -gt 0 ] || WANT=(go rust cenv musl muslfs)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# Serialise concurrent callers (ctest -j); bounded wait.
exec 9>"$OUT/.build.lock"
flock -w 300 9 || { echo "build.sh: could not lock $OUT/.build.lock" >&2; exit 1; }

missing=0
failed=0

# stale OUTPUT SOURCE: true when OUTPUT must be (re)built.
stale() { [ ! -x "$1" ] || [ "$2" -nt "$1" ] || [ "${BASH_SOURCE[0]}" -nt "$1" ]; }

# check_static FILE: fail unless FILE is an ELF with no interpreter and no
# shared-library dependencies (a static-pie still has a dynamic section with
# only relocation entries, which we accept; none of ours is built as one).
check_static() {
	local f=$1
	if readelf -lW "$f" | grep -q 'INTERP'; then
		echo "build.sh: $f has a PT_INTERP (dynamically linked)" >&2
		return 1
	fi
	if readelf -dW "$f" 2>/dev/null | grep -q '(NEEDED)'; then
		echo "build.sh: $f needs shared libraries:" >&2
		readelf -dW "$f" | grep '(NEEDED)' >&2
		return 1
	fi
	file -b "$f" | grep -q 'statically linked' || {
		echo "build.sh: file(1) does not call $f statically linked: $(file -b "$f")" >&2
		return 1
	}
}

# build NAME TOOL SOURCE CMD...: run CMD (which writes OUT/NAME.tmp) when stale.
build() {
	local name=$1 tool=$2 src=$3
	shift 3
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "build.sh: $name: '$tool' not found (run scripts/deps)" >&2
		missing=1
		return 0
	fi
	stale "$OUT/$name" "$src" || return 0
	rm -f "$OUT/$name" "$OUT/$name.tmp"
	if ! "$@" || ! check_static "$OUT/$name.tmp"; then
		echo "build.sh: building $name failed" >&2
		rm -f "$OUT/$name.tmp"
		failed=1
		return 0
	fi
	mv "$OUT/$name.tmp" "$OUT/$name"
	echo "build.sh: built $OUT/$name" >&2
}

go_build() {
	# GOPATH mode without network: std only, caches inside OUTDIR.
	mkdir -p "$OUT/go-cache" "$OUT/go-path"
	CGO_ENABLED=0 GO111MODULE=off GOFLAGS= GOPROXY=off GOCACHE="$OUT/go-cache" \
		GOPATH="$OUT/go-path" go build -trimpath -o "$OUT/go_client.tmp" "$SRC/go_client.go"
}
rust_build() {
	# crt-static on the gnu target links glibc statically; relocation-model
	# static makes it a classic static executable rather than a static-pie.
	rustc --edition 2021 -O -C target-feature=+crt-static -C relocation-model=static \
		-o "$OUT/rust_client.tmp" "$SRC/rust_client.rs"
}
cenv_build() { gcc -static -O2 -Wall -Wextra -o "$OUT/env_printer.tmp" "$SRC/env_printer.c"; }
musl_build() { musl-gcc -static -O2 -Wall -Wextra -o "$OUT/musl_http.tmp" "$SRC/musl_http.c"; }
muslfs_build() { musl-gcc -static -O2 -Wall -Wextra -o "$OUT/musl_fs.tmp" "$SRC/musl_fs.c"; }

# rustc may live in ~/.cargo/bin, which a root shell's PATH may lack.
[ -x /root/.cargo/bin/rustc ] && ! command -v rustc >/dev/null 2>&1 && PATH=$PATH:/root/.cargo/bin
[ -n "${HOME:-}" ] && [ -x "$HOME/.cargo/bin/rustc" ] && ! command -v rustc >/dev/null 2>&1 && PATH=$PATH:$HOME/.cargo/bin

for w in "${WANT[@]}"; do
	case $w in
	go) build go_client go "$SRC/go_client.go" go_build ;;
	rust) build rust_client rustc "$SRC/rust_client.rs" rust_build ;;
	cenv) build env_printer gcc "$SRC/env_printer.c" cenv_build ;;
	musl) build musl_http musl-gcc "$SRC/musl_http.c" musl_build ;;
	muslfs) build musl_fs musl-gcc "$SRC/musl_fs.c" muslfs_build ;;
	*) echo "build.sh: unknown program '$w'" >&2; exit 2 ;;
	esac
done
[ $failed = 0 ] || exit 1
[ $missing = 0 ] || exit 77
exit 0
