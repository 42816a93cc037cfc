"""The project's one version: [workspace.package] version in Cargo.toml.

    python scripts/version.py            print it; fail if a manifest disagrees
    python scripts/version.py --set X    set it everywhere

Every crate inherits it (version.workspace), the wheel and sdist take it
from Cargo.toml (maturin, scripts/wheel.py), kpl.pc and the CMake package get
it from scripts/package.sh, and kpl_version() / `kpl --version` from cargo.
Only npm needs it written down: bindings/node/package.json, its lockfile and
native.cjs (napi-rs's loader compares the per-platform package's version with
its own), checked here (scripts/package.sh and the lint step run this) and
written by --set.
"""

import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARGO = ROOT / "Cargo.toml"
NPM = [ROOT / "bindings/node/package.json", ROOT / "bindings/node/package-lock.json"]
LOADER = ROOT / "bindings/node/native.cjs"
# The version napi build wrote into the loader, in each platform's check.
LOADER_VERSION = re.compile(r"(bindingPackageVersion !== '|expected )([^' ]+)")


def npm_versions(path: Path) -> list:
    doc = json.loads(path.read_text())
    found = [doc["version"]]
    if "packages" in doc:  # the lockfile's root package
        found.append(doc["packages"][""]["version"])
    return found


def set_version(version: str) -> None:
    if not re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?", version):
        sys.exit(f"version {version!r}: expected MAJOR.MINOR.PATCH[-PRE]")
    text = CARGO.read_text()
    text = re.sub(
        r'(\[workspace\.package\]\nversion = ")[^"]*(")', rf"\g<1>{version}\g<2>", text, count=1
    )
    # The workspace's own crates in [workspace.dependencies] carry it too.
    text = re.sub(
        r'^(kpl-[a-z]+ = \{ path = "[^"]*", version = ")[^"]*(")',
        rf"\g<1>{version}\g<2>",
        text,
        flags=re.M,
    )
    CARGO.write_text(text)
    for path in NPM:
        doc = json.loads(path.read_text())
        doc["version"] = version
        if "packages" in doc:
            doc["packages"][""]["version"] = version
        path.write_text(json.dumps(doc, indent=2) + "\n")
    LOADER.write_text(LOADER_VERSION.sub(rf"\g<1>{version}", LOADER.read_text()))


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--set":
        set_version(sys.argv[2])
    elif len(sys.argv) != 1:
        sys.exit(__doc__)
    cargo = tomllib.loads(CARGO.read_text())
    version = cargo["workspace"]["package"]["version"]
    wrong = [
        f"{path.relative_to(ROOT)} has {found}"
        for path in NPM
        for found in npm_versions(path)
        if found != version
    ]
    wrong += [
        f"Cargo.toml [workspace.dependencies] {name} has {dep['version']}"
        for name, dep in cargo["workspace"]["dependencies"].items()
        if isinstance(dep, dict) and "path" in dep and dep.get("version") != version
    ]
    loader = {m.group(2) for m in LOADER_VERSION.finditer(LOADER.read_text())}
    wrong += [f"{LOADER.relative_to(ROOT)} expects {v}" for v in sorted(loader - {version})]
    if not loader:
        wrong.append(f"{LOADER.relative_to(ROOT)} has no version check (napi build changed?)")
    if wrong:
        print(
            f"the workspace version is {version}, but " + "; ".join(wrong)
            + f" (python scripts/version.py --set {version} writes it everywhere)",
            file=sys.stderr,
        )
        return 1
    print(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
