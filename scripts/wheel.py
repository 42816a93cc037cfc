"""Packs the Python wheel from a native module cargo already built.

    python scripts/wheel.py --module target/<triple>/dist/lib_kpl.so \
        --version 0.1.0 --platform manylinux_2_17_x86_64.manylinux2014_x86_64 --out dist

scripts/package.sh builds every native artifact in one cargo invocation;
`maturin build` would compile the workspace a second time (it builds the
Python crate alone, so its dependencies get other features). This writes the
same wheel maturin would: the `kpl` package from bindings/python/python, the
module as kpl/_kpl.abi3.so, and the metadata from bindings/python/pyproject.toml.
auditwheel checks the result in package.sh.
"""

import argparse
import base64
import hashlib
import re
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINDING = ROOT / "bindings" / "python"


def metadata(project: dict, version: str) -> str:
    lines = [
        "Metadata-Version: 2.3",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project['description']}",
        f"Requires-Python: {project['requires-python']}",
        f"License: {project['license']['text']}",
    ]
    lines += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    lines += [f"Project-URL: {k}, {v}" for k, v in project.get("urls", {}).items()]
    readme = project.get("readme")
    if readme:
        lines.append("Description-Content-Type: text/markdown")
        body = (BINDING / readme).read_text()
        return "\n".join(lines) + "\n\n" + body
    return "\n".join(lines) + "\n"


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", required=True, type=Path, help="the built lib_kpl.so")
    parser.add_argument("--version", required=True)
    parser.add_argument("--platform", required=True, help="wheel platform tag(s), dot-separated")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    pyproject = tomllib.loads((BINDING / "pyproject.toml").read_text())
    project = pyproject["project"]
    module_name = pyproject["tool"]["maturin"]["module-name"]  # kpl._kpl
    package, native = module_name.split(".")
    # abi3 for the lowest CPython the project supports (">=3.10" -> cp310).
    low = re.fullmatch(r">=\s*3\.(\d+)", project["requires-python"].strip())
    if low is None:
        sys.exit(f"requires-python {project['requires-python']!r}: expected '>=3.N'")
    python_tag = f"cp3{low.group(1)}"
    dist_name = re.sub(r"[-_.]+", "_", project["name"]).lower()
    dist_info = f"{dist_name}-{args.version}.dist-info"
    tags = [f"{python_tag}-abi3-{p}" for p in args.platform.split(".")]

    files: list[tuple[str, bytes, int]] = []  # (name in wheel, data, unix mode)
    src = BINDING / pyproject["tool"]["maturin"]["python-source"] / package
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or "__pycache__" in rel.parts or path.suffix in (".so", ".pyc"):
            continue
        files.append((f"{package}/{rel.as_posix()}", path.read_bytes(), 0o644))
    files.append((f"{package}/{native}.abi3.so", args.module.read_bytes(), 0o755))
    files.append((f"{dist_info}/METADATA", metadata(project, args.version).encode(), 0o644))
    wheel = ["Wheel-Version: 1.0", "Generator: kpl-rs scripts/wheel.py", "Root-Is-Purelib: false"]
    wheel += [f"Tag: {t}" for t in tags]
    files.append((f"{dist_info}/WHEEL", ("\n".join(wheel) + "\n").encode(), 0o644))
    record = [record_line(name, data) for name, data, _ in files]
    record.append(f"{dist_info}/RECORD,,")
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode(), 0o644))

    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{dist_name}-{args.version}-{python_tag}-abi3-{args.platform}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in files:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
