"""A credential holding characters no signature has (accented or CJK letters, the lone
surrogates non-UTF-8 header bytes decode to) is refused like any wrong one, never an
internal error (hmac.compare_digest raises TypeError on non-ASCII text)."""

from __future__ import annotations

import pytest

from tests.services.signature_cases import CHECKS, Check

STRANGERS = ["é", "签", "\udcff", "\x00"]


@pytest.mark.parametrize("stranger", STRANGERS, ids=["latin", "cjk", "surrogate", "nul"])
@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_non_ascii_credential_is_refused_not_an_error(check: Check, stranger: str) -> None:
    """The credential with its last (or first) character replaced by a non-ASCII one, or with
    one appended, is refused without raising anything but the check's own refusal."""
    for candidate in (check.valid[:-1] + stranger, stranger + check.valid[1:],
                      check.valid + stranger):
        assert not check.accepts(candidate)
