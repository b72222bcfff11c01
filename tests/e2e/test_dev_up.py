"""`./dev up` as a person runs it: it comes up, prints URLs that answer, stops on Ctrl-C, and
keeps its data for the next run."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from tests.e2e.stack_helpers import http, start, stop

pytestmark = pytest.mark.e2e


def test_dev_up_serves_the_printed_urls_and_keeps_data(tmp_path: Path) -> None:
    """The printed card URL answers for the printed token; a second run finds the same seed."""
    offset = random.randrange(2000, 9000, 10)
    process, banner = start(tmp_path, offset)
    try:
        token = re.search(r"shopper token\s+(\S+)", banner)
        card_url = re.search(r"storefront API\s+(\S+)", banner)
        brand = re.search(r"brand (brd_\w+)", banner)
        follow = re.search(r"curl -X POST -H 'Authorization: Bearer \S+' (\S+)", banner)
        assert token and card_url and brand and follow, banner
        assert http("POST", follow.group(1), token.group(1))[0] == 200
        status, body = http("GET", card_url.group(1), token.group(1))
        assert status == 200, body
        assert body["card"]["status"] == "LV0"
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert "dev: stopping" in output

    again, banner_again = start(tmp_path, offset)
    try:
        assert f"brand {brand.group(1)}" in banner_again
        token_again = re.search(r"shopper token\s+(\S+)", banner_again)
        assert token_again
        status, body = http("GET", card_url.group(1), token_again.group(1))
        assert (status, body["card"]["status"]) == (200, "LV0"), "the follow did not persist"
    finally:
        stop(again)
    assert again.returncode == 0
