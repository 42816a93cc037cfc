#!/usr/bin/env bash
# Builds every installable artifact into dist/, for the machine's CPU on Linux,
# linked against glibc 2.17 (Amazon Linux 2, RHEL 7+, Ubuntu 14.04+ and later):
#
#   dist/kpl_rs-<v>-cp310-abi3-manylinux_2_17_<arch>.manylinux2014_<arch>.whl
#   dist/kpl_rs-<v>.tar.gz                      Python sdist (builds with cargo)
#   dist/kpl-rs-<v>.tgz                         npm package with this platform's addon
#   dist/npm/kpl-rs-<platform>-<v>.tgz          the same addon as napi-rs's per-platform package
#   dist/kpl-c-sdk-<v>-<arch>-linux-gnu.tar.gz  libkpl.so/.a, kpl.h, pkg-config, CMake package
#   dist/kpl                                    the `kpl` command, standalone
#
# One cargo build (profile `dist`: release without debug info) makes every
# native piece; zig (PyPI `ziglang`, through cargo-zigbuild) is the linker
# that targets the old glibc. The tools go into .venv-package. Then prints
# each artifact's size and the newest glibc symbol version it needs, and
# fails when that is above 2.17 or when auditwheel disagrees with the tag.
#
# Another platform (arm64 gateways): run this script on an aarch64 Linux
# machine; it picks the matching targets and tags. Needs: cargo, python3
# (with venv), node/npm (npm pack), binutils (objdump, strip), tar.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DIST="$ROOT/dist"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
GLIBC="2.17"
PROFILE="dist"

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ARCH=x86_64 NODE_ARCH=x64 ;;
    Linux-aarch64) ARCH=aarch64 NODE_ARCH=arm64 ;;
    *)
        echo "package.sh builds on Linux x86_64 or aarch64, not $(uname -s) $(uname -m)" >&2
        exit 1
        ;;
esac
TRIPLE="$ARCH-unknown-linux-gnu"
NODE_PLATFORM="linux-$NODE_ARCH-gnu"
WHEEL_PLATFORM="manylinux_2_17_$ARCH.manylinux2014_$ARCH"
OUT="$TARGET_DIR/$TRIPLE/$PROFILE"
STAGE="$TARGET_DIR/dist-stage"

# ------------------------------------------------------------- tools --
VENV="$ROOT/.venv-package"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
want="$(sha256sum scripts/package-requirements.txt | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r scripts/package-requirements.txt
    echo "$want" >"$stamp"
fi
# cargo-zigbuild finds zig through `python3 -m ziglang` of this venv.
export PATH="$VENV/bin:$PATH"

# ---------------------------------------------------------- versions --
# The workspace version is the one version; the npm manifests must carry it.
VERSION="$("$VENV/bin/python" scripts/version.py)"
echo "kpl-rs $VERSION for $TRIPLE (glibc $GLIBC)"

# ------------------------------------------------------------- build --
cargo zigbuild --locked --profile "$PROFILE" --target "$TRIPLE.$GLIBC" \
    -p kpl-ffi -p kpl-cli -p kpl-node -p kpl-python

rm -rf "$DIST" "$STAGE"
mkdir -p "$DIST/npm" "$STAGE"

# ---------------------------------------------------- the kpl command --
cp "$OUT/kpl" "$DIST/kpl"

# -------------------------------------------------------------- wheel --
"$VENV/bin/python" scripts/wheel.py --module "$OUT/lib_kpl.so" --version "$VERSION" \
    --platform "$WHEEL_PLATFORM" --out "$DIST" >/dev/null
maturin sdist -m bindings/python/Cargo.toml -o "$DIST" >/dev/null
WHEEL="$(ls "$DIST"/kpl_rs-"$VERSION"-*.whl)"

# ---------------------------------------------------------------- npm --
# dist/kpl-rs-<v>.tgz carries this platform's addon beside native.cjs, the
# loader napi-rs generated, which tries that file first: the tarball installs
# by itself, offline, and needs no build step. It lists no optionalDependencies:
# npm would try to fetch every platform package named there, and they are
# only on a registry once a release publishes them. The per-platform package
# (dist/npm/) is the same addon under the name native.cjs falls back to
# (kpl-rs-<platform>), for such a release.
ADDON="kpl-rs.$NODE_PLATFORM.node"
npm_main="$STAGE/npm/kpl-rs"
mkdir -p "$npm_main"
cp bindings/node/{package.json,README.md,index.js,index.mjs,index.d.ts,native.cjs,native.d.ts} "$npm_main/"
cp -r bindings/node/lib "$npm_main/"
cp LICENSE "$npm_main/"
cp "$OUT/libkpl_node.so" "$npm_main/$ADDON"
(cd "$npm_main" && npm pack --silent --pack-destination "$DIST" >/dev/null)

npm_platform="$STAGE/npm/$NODE_PLATFORM"
mkdir -p "$npm_platform"
cp "$OUT/libkpl_node.so" "$npm_platform/$ADDON"
"$VENV/bin/python" - "$npm_platform" "$VERSION" "$NODE_PLATFORM" "$NODE_ARCH" "$ADDON" <<'PY'
import json, sys
out, version, platform, arch, addon = sys.argv[1:]
main = json.load(open("bindings/node/package.json"))
manifest = {
    "name": f"kpl-rs-{platform}",
    "version": version,
    "description": f"The {platform} native addon of kpl-rs (installed by kpl-rs)",
    "license": main["license"],
    "repository": main.get("repository"),
    "main": addon,
    "files": [addon],
    "os": ["linux"],
    "cpu": [arch],
    "libc": ["glibc"],
    "engines": main["engines"],
}
json.dump(manifest, open(f"{out}/package.json", "w"), indent=2)
PY
(cd "$npm_platform" && npm pack --silent --pack-destination "$DIST/npm" >/dev/null)

# ------------------------------------------------------------- C SDK --
sdk_name="kpl-c-sdk-$VERSION-$ARCH-linux-gnu"
sdk="$STAGE/$sdk_name"
mkdir -p "$sdk/lib/pkgconfig" "$sdk/lib/cmake/kpl" "$sdk/include"
cp "$OUT/libkpl.so" "$OUT/libkpl.a" "$sdk/lib/"
# The archive carries the standard library's debug info; shed it.
strip --strip-debug "$sdk/lib/libkpl.a"
cp kpl-ffi/include/kpl.h "$sdk/include/"
cp LICENSE "$sdk/"
# Relocatable: pkg-config resolves ${pcfiledir} to wherever kpl.pc is.
sed -e 's|@LIBDIR@|${pcfiledir}/..|' -e 's|@INCLUDEDIR@|${pcfiledir}/../../include|' \
    -e "s|@VERSION@|$VERSION|" kpl-ffi/kpl.pc.in >"$sdk/lib/pkgconfig/kpl.pc"
cp kpl-ffi/cmake/kplConfig.cmake "$sdk/lib/cmake/kpl/"
IFS=. read -r major minor _ <<<"$VERSION"
sed -e "s|@VERSION@|$VERSION|" -e "s|@VERSION_MAJOR@|$major|" -e "s|@VERSION_MINOR@|$minor|" \
    kpl-ffi/cmake/kplConfigVersion.cmake.in >"$sdk/lib/cmake/kpl/kplConfigVersion.cmake"
tar -C "$STAGE" -czf "$DIST/$sdk_name.tar.gz" "$sdk_name"

# ------------------------------------------------------------ checks --
newest_glibc() {
    objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1
}
failed=0
echo
printf '%-58s %12s  %s\n' artifact bytes 'newest glibc symbol'
for artifact in "$WHEEL" "$DIST"/kpl_rs-"$VERSION".tar.gz "$DIST/kpl-rs-$VERSION.tgz" \
    "$DIST/npm/kpl-rs-$NODE_PLATFORM-$VERSION.tgz" "$DIST/$sdk_name.tar.gz" "$DIST/kpl"; do
    printf '%-58s %12s\n' "${artifact#"$ROOT"/}" "$(stat -c %s "$artifact")"
done
for binary in "$OUT/lib_kpl.so:wheel kpl/_kpl.abi3.so" "$OUT/libkpl_node.so:npm $ADDON" \
    "$sdk/lib/libkpl.so:C SDK lib/libkpl.so" "$DIST/kpl:kpl"; do
    file="${binary%%:*}"
    glibc="$(newest_glibc "$file")"
    printf '  %-56s %12s  GLIBC_%s\n' "${binary#*:}" "$(stat -c %s "$file")" "$glibc"
    if [[ "$(printf '%s\n%s\n' "$glibc" "$GLIBC" | sort -V | tail -n1)" != "$GLIBC" ]]; then
        echo "    needs glibc $glibc, above $GLIBC" >&2
        failed=1
    fi
done
# The tag the way PyPI's upload check and pip see it.
report="$(auditwheel show "$WHEEL" 2>&1)"
if ! grep -q "manylinux_2_17_$ARCH" <<<"$report"; then
    echo "auditwheel does not find the wheel manylinux_2_17_$ARCH:" >&2
    echo "$report" >&2
    failed=1
else
    echo "auditwheel: $(tr '\n' ' ' <<<"$report" | grep -o 'consistent with the following platform tag: "[^"]*"')"
fi
exit "$failed"
