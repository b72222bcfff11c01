"""Generate Python code and .pyi stubs from protos/ into gen/.

`python -m tools.codegen` rewrites gen/ from the protos; `--check` generates into a scratch
directory and fails when the committed gen/ differs (CI runs that, so stale code never lands).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
GEN_ROOT = ROOT / "gen"


def _proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Run protoc (grpcio-tools) with the mypy-protobuf plugins into out_dir."""
    import grpc_tools  # imported late: only the dev extra ships it

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable, "-m", "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *(str(p.relative_to(PROTO_ROOT)) for p in _proto_files()),
    ]
    # The mypy plugin reports every file it writes; show protoc's output only when it fails.
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"codegen: protoc failed ({done.returncode}):\n{done.stderr}")
    # Every directory becomes a regular package so that mypy and setuptools see it.
    for directory in [out_dir / "brandclub", *(out_dir / "brandclub").rglob("*")]:
        if directory.is_dir():
            (directory / "__init__.py").touch()
    (out_dir / "brandclub" / "py.typed").touch()


def _tree(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def differences(expected: Path, actual: Path) -> list[str]:
    want, have = _tree(expected), _tree(actual)
    problems = [f"missing: gen/{name}" for name in sorted(want - have)]
    problems += [f"unexpected: gen/{name}" for name in sorted(have - want)]
    for name in sorted(want & have):
        if not filecmp.cmp(expected / name, actual / name, shallow=False):
            problems.append(f"stale: gen/{name}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if gen/ is stale")
    parser.add_argument("--quiet", action="store_true")
    options = parser.parse_args()
    check = options.check or os.environ.get("CI") == "true"
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "gen"
        generate(fresh)
        problems = differences(fresh, GEN_ROOT) if GEN_ROOT.exists() else ["gen/ is missing"]
        if not problems:
            if not options.quiet:
                print("codegen: gen/ is up to date")
            return
        if check:
            print("codegen: gen/ does not match protos/; run ./dev codegen", file=sys.stderr)
            print("\n".join(problems), file=sys.stderr)
            raise SystemExit(1)
        shutil.rmtree(GEN_ROOT, ignore_errors=True)
        shutil.copytree(fresh, GEN_ROOT)
        print(f"codegen: regenerated gen/ ({len(problems)} change(s))", file=sys.stderr)


if __name__ == "__main__":
    main()
