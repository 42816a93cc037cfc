#!/bin/sh
# Writes kpl.pc for a built libkpl: gen-pc.sh LIBDIR OUT_DIR
#   LIBDIR   the directory holding libkpl.so / libkpl.a (e.g. target/release)
#   OUT_DIR  where kpl.pc goes (point PKG_CONFIG_PATH there)
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
libdir="$(cd "$1" && pwd)"
mkdir -p "$2"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../Cargo.toml" | head -n1)"
sed -e "s|@LIBDIR@|$libdir|" -e "s|@INCLUDEDIR@|$here/include|" -e "s|@VERSION@|$version|" \
    "$here/kpl.pc.in" >"$2/kpl.pc"
echo "$2/kpl.pc"
