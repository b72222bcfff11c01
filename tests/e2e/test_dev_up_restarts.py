"""`./dev up` keeps the suite up: a service killed with SIGKILL is started again (with
backoff) and the other services keep running, untouched."""

from __future__ import annotations

import os
import queue
import random
import re
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from libs.config import SERVICE_PORTS
from tests.e2e.stack_helpers import http, start

pytestmark = pytest.mark.e2e


def service_pids(dev_pid: int) -> dict[str, int]:
    """The service processes `./dev up` launched, by service name."""
    pids: dict[str, int] = {}
    for child in psutil.Process(dev_pid).children(recursive=True):
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            continue
        for name in SERVICE_PORTS:
            if f"services.{name}" in cmdline:
                pids[name] = child.pid
    return pids


def test_a_service_killed_under_dev_up_comes_back_and_the_others_keep_running(
        tmp_path: Path) -> None:
    """kill -9 membership: dev up says it restarts it, a new membership serves the card URL
    again, and the five other service processes are the same ones, still running."""
    offset = random.randrange(2000, 9000, 10)
    process, banner = start(tmp_path, offset)
    lines: queue.Queue[str] = queue.Queue()

    def read_output() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    seen: list[str] = []

    def wait_for_line(pattern: str, within: float) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r}; output:\n{''.join(seen)}")

    try:
        token = re.search(r"shopper token\s+(\S+)", banner)
        card_url = re.search(r"storefront API\s+(\S+)", banner)
        assert token and card_url, banner
        assert http("GET", card_url.group(1), token.group(1))[0] in (200, 404)
        before = service_pids(process.pid)
        assert set(before) == set(SERVICE_PORTS), before

        os.kill(before["membership"], signal.SIGKILL)
        wait_for_line(r"dev: membership exited .*restarting it in", 30)
        wait_for_line(r"dev: membership restarted", 30)

        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline:
            try:
                status = http("GET", card_url.group(1), token.group(1))[0]
            except OSError:
                status = 0
            if status in (200, 404):  # membership answers again (404: no card yet)
                break
            time.sleep(0.5)
        assert status in (200, 404), f"the card URL answered {status} after the restart"

        after = service_pids(process.pid)
        assert after["membership"] != before["membership"]
        for name in SERVICE_PORTS:
            if name != "membership":
                assert after[name] == before[name], f"{name} was restarted too"
                assert psutil.Process(before[name]).is_running()
        assert process.poll() is None, "dev up stopped"
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        process.wait(60)
        reader.join(10)
    while not lines.empty():
        seen.append(lines.get())
    output = "".join(seen)
    assert "stopping the suite" not in output
    assert "dev: stopping" in output
    assert process.returncode == 0, output
