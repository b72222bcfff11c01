"""Renders the open platform's method catalogue and error codes into docs/open-platform.md.

`python -m services.gateway.catalogue_doc` rewrites the generated part of the page; a test
fails while the page is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from services.gateway.api.openplatform_methods import METHODS
from services.gateway.domain import openplatform as proto

DOC = Path(__file__).resolve().parents[2] / "docs" / "open-platform.md"
BEGIN = "<!-- BEGIN GENERATED CATALOGUE (python -m services.gateway.catalogue_doc) -->"
END = "<!-- END GENERATED CATALOGUE -->"


def render() -> str:
    lines = [BEGIN, "", "### Error codes (`error_response.code`)", "",
             "| code | en_desc | zh_desc |", "| --- | --- | --- |"]
    lines += [f"| `{e.code}` | {e.en_desc} | {e.zh_desc} |" for e in proto.ERROR_CODES]
    lines += ["", "### Methods", ""]
    for spec, _ in sorted(METHODS.values(), key=lambda m: m[0].name):
        lines += [f"#### `{spec.name}`", "",
                  f"{spec.summary}", "",
                  f"- scope: `{spec.scope}`; kind: {'write' if spec.write else 'read'}",
                  f"- success envelope: `{proto.response_key(spec.name)}` -> "
                  f"`{proto.result_key(spec.name)}`", "",
                  "| parameter | type | required | description |",
                  "| --- | --- | --- | --- |"]
        for param in spec.params:
            bounds = []
            if param.minimum is not None:
                bounds.append(f">= {param.minimum}")
            if param.maximum is not None:
                bounds.append(f"<= {param.maximum}")
            if param.type == "string":
                bounds.append(f"at most {param.max_length} characters")
            note = f" ({', '.join(bounds)})" if bounds else ""
            lines.append(f"| `{param.name}` | {param.type} | "
                         f"{'yes' if param.required else 'no'} | {param.description}{note} |")
        lines += ["", "| result field (`data`) | meaning |", "| --- | --- |"]
        lines += [f"| `{name}` | {meaning} |" for name, meaning in spec.result.items()]
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def current_generated_part(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def write() -> bool:
    """Rewrite the generated part; True when it changed."""
    text = DOC.read_text()
    fresh = render()
    if current_generated_part(text) == fresh:
        return False
    DOC.write_text(text.replace(current_generated_part(text), fresh))
    return True


if __name__ == "__main__":
    changed = write()
    print(f"catalogue_doc: {'rewrote' if changed else 'unchanged'} {DOC}")
    sys.exit(0)
