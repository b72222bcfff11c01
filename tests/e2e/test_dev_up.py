"""`./dev up` as a person runs it: it comes up, prints URLs that answer, stops on Ctrl-C, and
keeps its data for the next run."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tools.stack import ROOT

pytestmark = pytest.mark.e2e


def start(data_dir: Path, offset: int) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DATA_DIR": str(data_dir), "PORT_OFFSET": str(offset), "LOG_LEVEL": "warning"})
    process = subprocess.Popen([sys.executable, "-m", "tools.devstack"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C stops everything."):
            return process, "".join(lines)
    process.kill()
    raise AssertionError("dev up did not come up:\n" + "".join(lines))


def http(method: str, url: str, token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, method=method,
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    return output


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
