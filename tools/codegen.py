"""Generate Python code and .pyi stubs from protos/ into gen/, and check the contracts with buf.

`python -m tools.codegen` rewrites gen/ from the protos; `--check` generates into a scratch
directory and fails when the committed gen/ differs (CI runs that, so stale code never lands).

`--lint` runs `buf lint` (protos/buf.yaml: the STANDARD rules) and `--breaking` runs
`buf breaking` against protos/baseline.binpb, the contracts of the last release (wire and JSON
compatibility: what a rolling deploy, a stored event and an ISV's JSON client rely on).
`--baseline` rewrites that baseline; run it when a release is cut (docs/development.md).
buf reads an image that protoc builds here, with the same include paths as the code (so
google/api/field_behavior.proto comes from the locked googleapis-common-protos, no network).
buf itself is the npm package pinned in tools/buf/package-lock.json, installed with `npm ci`
on first use and again whenever the lock file changes.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
GEN_ROOT = ROOT / "gen"
BUF_CONFIG = PROTO_ROOT / "buf.yaml"
BASELINE = PROTO_ROOT / "baseline.binpb"
BUF_DIR = ROOT / "tools" / "buf"
BUF_BINARY = BUF_DIR / "node_modules" / ".bin" / "buf"
# Our own protos: buf checks these, not the google/ files the image also carries.
OWN_PACKAGE_DIR = "brandclub"


def _proto_files(root: Path = PROTO_ROOT) -> list[Path]:
    return sorted(root.rglob("*.proto"))


def include_dirs() -> list[Path]:
    """protoc's import path besides protos/: the well-known types (grpcio-tools) and
    google/api/*.proto (googleapis-common-protos, the package that also provides their Python
    modules at run time)."""
    import grpc_tools  # imported late: only the dev extra ships it
    from google.api import field_behavior_pb2

    return [Path(grpc_tools.__file__).parent / "_proto",
            Path(field_behavior_pb2.__file__).resolve().parents[2]]


def _protoc(args: list[str], proto_root: Path = PROTO_ROOT) -> None:
    command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_root}",
               *(f"-I{path}" for path in include_dirs()), *args,
               *(str(p.relative_to(proto_root)) for p in _proto_files(proto_root))]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"codegen: protoc failed ({done.returncode}):\n{done.stderr}")


def generate(out_dir: Path, *, proto_root: Path = PROTO_ROOT) -> None:
    """Run protoc (grpcio-tools) with the mypy-protobuf plugins into out_dir."""
    bin_dir = Path(sys.executable).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
    ]
    # The mypy plugin reports every file it writes; protoc's output shows only when it fails.
    _protoc(args, proto_root)
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


def build_image(out: Path, *, proto_root: Path = PROTO_ROOT, source_info: bool = True) -> Path:
    """A buf image (FileDescriptorSet with every import) of the protos under proto_root;
    source info (comments, line numbers) makes lint findings point at lines."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _protoc([f"--descriptor_set_out={out}", "--include_imports",
             *(["--include_source_info"] if source_info else [])], proto_root)
    return out


def buf() -> Path:
    """The pinned buf binary, installed (`npm ci` in tools/buf/) when missing or when
    package-lock.json changed since it was installed."""
    lock = BUF_DIR / "package-lock.json"
    stamp = BUF_DIR / "node_modules" / ".lock-stamp"
    want = hashlib.sha256(lock.read_bytes()).hexdigest()
    if BUF_BINARY.exists() and stamp.exists() and stamp.read_text() == want:
        return BUF_BINARY
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("codegen: buf is installed with npm: install Node.js 18 or newer "
                         "(https://nodejs.org), then run again")
    print("codegen: installing buf (npm ci in tools/buf)", file=sys.stderr)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BUF_DIR,
                   check=True, stdout=sys.stderr)
    stamp.write_text(want)
    return BUF_BINARY


def lint(image: Path) -> list[str]:
    """buf lint findings for our protos in `image` (empty when clean)."""
    return _buf_findings(["lint", str(image), "--config", str(BUF_CONFIG),
                          "--path", OWN_PACKAGE_DIR])


def breaking(image: Path, against: Path = BASELINE) -> list[str]:
    """buf breaking findings of `image` against the baseline (empty when compatible)."""
    return _buf_findings(["breaking", str(image), "--against", str(against),
                          "--config", str(BUF_CONFIG), "--path", OWN_PACKAGE_DIR])


def _buf_findings(args: list[str]) -> list[str]:
    done = subprocess.run([str(buf()), *args], capture_output=True, text=True, check=False,
                          cwd=ROOT)
    findings = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 and not findings:
        raise SystemExit(f"codegen: buf {args[0]} failed ({done.returncode}):\n{done.stderr}")
    return findings


def _report(name: str, findings: list[str], advice: str) -> None:
    if findings:
        print("\n".join(findings), file=sys.stderr)
        raise SystemExit(f"codegen: buf {name}: {len(findings)} finding(s); {advice}")
    print(f"codegen: buf {name}: clean")


def check_contracts(*, lint_protos: bool, check_breaking: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        image = build_image(Path(scratch) / "image.binpb")
        if lint_protos:
            _report("lint", lint(image), "fix them (docs/development.md, Contracts)")
        if check_breaking:
            _report("breaking", breaking(image),
                    "keep the old field/method (reserve what you remove) or, for a new "
                    "release, refresh the baseline (docs/development.md, Contracts)")


def write_baseline() -> None:
    """Record today's contracts as the ones the next changes must stay compatible with."""
    build_image(BASELINE, source_info=False)
    print(f"codegen: wrote {BASELINE.relative_to(ROOT)}; commit it with the release")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if gen/ is stale")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--lint", action="store_true", help="buf lint the protos")
    parser.add_argument("--breaking", action="store_true",
                        help="buf breaking against protos/baseline.binpb")
    parser.add_argument("--baseline", action="store_true",
                        help="rewrite protos/baseline.binpb (when a release is cut)")
    options = parser.parse_args()
    if options.baseline:
        write_baseline()
        return
    if options.lint or options.breaking:
        check_contracts(lint_protos=options.lint, check_breaking=options.breaking)
        return
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
