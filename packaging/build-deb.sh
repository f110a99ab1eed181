#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (`cargo install cargo-deb --locked`).
#
#   packaging/build-deb.sh                   release build, then package it
#   packaging/build-deb.sh --binary PATH     package an already-built binary
#                                            (CI packages the debug build)
#   --out DIR                                where the .deb goes
#                                            (default: <target dir>/debian)
#
# Before packaging, the man pages and shell completions are generated from
# the binary's own clap definitions (`allerta generate …`), so they always
# match the options of the binary that ships. Prints the .deb's path.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
binary=""
out=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--out DIR]" >&2; exit 2 ;;
    esac
done

if [[ -z $binary ]]; then
    cargo build --release --locked
    stage=$target
else
    # cargo-deb takes binaries from <target dir>/release: stage a copy there
    # in a private directory, leaving the real target directory alone.
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/release"
    cp "$binary" "$stage/release/allerta"
fi
out=${out:-$target/debian}

bin=$stage/release/allerta
rm -rf "$stage/release/man" "$stage/release/completions"
"$bin" generate man --out "$stage/release/man"
gzip -9n "$stage/release/man"/*.1
for shell in bash zsh fish; do
    "$bin" generate completions "$shell" --out "$stage/release/completions"
done

mkdir -p "$out"
CARGO_TARGET_DIR=$stage cargo deb --no-build --locked --fast --strip --output "$out" |
    tail -n 1
