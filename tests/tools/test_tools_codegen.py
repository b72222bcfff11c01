"""tools.codegen: the committed gen/ is what the protos generate, and staleness is caught."""

from __future__ import annotations

import shutil
from pathlib import Path

from tools.codegen import GEN_ROOT, breaking, build_image, differences, generate, lint


def test_committed_gen_matches_the_protos(tmp_path: Path) -> None:
    """Generating from protos/ reproduces gen/ byte for byte."""
    fresh = tmp_path / "gen"
    generate(fresh)
    assert differences(fresh, GEN_ROOT) == []


def test_a_stale_or_missing_file_is_reported(tmp_path: Path) -> None:
    """An edited generated file and a missing one are both named."""
    fresh = tmp_path / "fresh"
    generate(fresh)
    stale = tmp_path / "stale"
    shutil.copytree(fresh, stale)
    edited = next(stale.rglob("membership_service_pb2.py"))
    edited.write_text(edited.read_text() + "\n# edited by hand\n")
    removed = next(stale.rglob("identity_service_pb2.pyi"))
    removed.unlink()
    problems = differences(fresh, stale)
    assert any(p.startswith("stale:") and p.endswith("membership_service_pb2.py")
               for p in problems)
    assert any(p.startswith("missing:") and p.endswith("identity_service_pb2.pyi")
               for p in problems)


# --- buf: lint and breaking-change checks ---------------------------------------------------

GOOD = """syntax = "proto3";
package brandclub.sample.v1;
// A sample.
message Sample {
  // Its id.
  string sample_id = 1;
  // Its name.
  string display_name = 2;
}
"""


def proto_tree(root: Path, text: str, package: str = "sample") -> Path:
    """A proto root holding one file at brandclub/<package>/v1/sample.proto."""
    text = text.replace("package brandclub.sample.v1;", f"package brandclub.{package}.v1;")
    path = root / "brandclub" / package / "v1" / "sample.proto"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return root


def test_the_protos_pass_buf_lint_and_breaking(tmp_path: Path) -> None:
    """What `./dev test` runs: the committed protos are lint-clean and compatible with the
    baseline of the last release."""
    image = build_image(tmp_path / "image.binpb")
    assert lint(image) == []
    assert breaking(image) == []


def test_lint_names_a_finding_in_our_protos(tmp_path: Path) -> None:
    """The STANDARD rules apply to our files: an enum without an _UNSPECIFIED zero value and
    a field name in camelCase are both reported, with the file and line."""
    bad = GOOD.replace("string display_name = 2;", "string displayName = 2;\n}\nenum Colour {\n"
                       "  RED = 0;")
    image = build_image(tmp_path / "image.binpb", proto_root=proto_tree(tmp_path / "p", bad))
    findings = lint(image)
    assert any("brandclub/sample/v1/sample.proto" in f and "displayName" in f for f in findings)
    assert any("_UNSPECIFIED" in f for f in findings)


def test_breaking_refuses_a_removed_field_unless_it_is_reserved(tmp_path: Path) -> None:
    """Removing a field breaks old readers; reserving its number and name makes the removal
    safe on the wire and in JSON, and a new field is always compatible."""
    baseline = build_image(tmp_path / "baseline.binpb", source_info=False,
                           proto_root=proto_tree(tmp_path / "old", GOOD))
    removed = GOOD.replace("  // Its name.\n  string display_name = 2;\n", "")
    image = build_image(tmp_path / "removed.binpb",
                        proto_root=proto_tree(tmp_path / "removed", removed))
    findings = breaking(image, baseline)
    assert any('field "2" with name "display_name"' in f and "reserving the number" in f
               for f in findings), findings
    reserved = removed.replace("  string sample_id = 1;\n", "  string sample_id = 1;\n"
                               "  reserved 2;\n  reserved \"display_name\";\n"
                               "  // Added.\n  string note = 3;\n")
    image = build_image(tmp_path / "reserved.binpb",
                        proto_root=proto_tree(tmp_path / "reserved", reserved))
    assert breaking(image, baseline) == []


def test_events_are_held_to_the_wire_only(tmp_path: Path) -> None:
    """Events travel as binary protobuf only: a field's name may move to a new number (its old
    number reserved), but a number may never change its wire type. Elsewhere the same rename
    breaks JSON clients and is refused."""
    renamed = GOOD.replace("  // Its name.\n  string display_name = 2;\n",
                           "  reserved 2;\n  // Its name, now a number.\n"
                           "  int64 display_name = 3;\n")
    retyped = GOOD.replace("string display_name = 2;", "int64 display_name = 2;")
    for package, change, compatible in [("events", renamed, True), ("events", retyped, False),
                                        ("sample", renamed, False)]:
        root = tmp_path / package / str(compatible)
        baseline = build_image(root / "baseline.binpb", source_info=False,
                               proto_root=proto_tree(root / "old", GOOD, package))
        image = build_image(root / "new.binpb",
                            proto_root=proto_tree(root / "new", change, package))
        assert (breaking(image, baseline) == []) is compatible, (package, compatible)
