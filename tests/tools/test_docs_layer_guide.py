"""docs/development.md's layer guide stays true to the code: every file it names as an example
exists, and every layer it promises is described."""

from __future__ import annotations

import re

from tools.stack import ROOT

GUIDE = (ROOT / "docs" / "development.md").read_text().split(
    "## A service, layer by layer\n", 1)[1].split("\n## ", 1)[0]
LAYERS = ("api (servicer)", "usecases", "domain", "adapters", "ports", "composition / main",
          "libs", "gateway api", "tests")


def test_every_layer_has_its_paragraph_and_an_example() -> None:
    """Each layer says what goes there, what never does, and names an example file."""
    paragraphs = {match.group(1): match.group(2) for match in re.finditer(
        r"^- \*\*(.+?)\*\*: (.*?)(?=^- \*\*|\Z)", GUIDE, re.M | re.S)}
    assert set(paragraphs) == set(LAYERS)
    for layer, text in paragraphs.items():
        assert "Example" in text, layer
        assert re.search(r"\bnever\b|\bno\b|\bNo\b|\bNever\b|\bonly\b", text), layer


def test_every_file_the_guide_names_exists() -> None:
    """A module that moves takes the guide with it."""
    named = set(re.findall(r"`((?:services|libs|tests|tools)/[\w/]+\.py)`", GUIDE))
    assert len(named) >= 9
    missing = sorted(path for path in named if not (ROOT / path).is_file())
    assert not missing, f"docs/development.md names files that do not exist: {missing}"
