"""libs.logging: JSON lines at the configured level, switched by SIGUSR1/SIGUSR2 while the
process runs."""

from __future__ import annotations

import json
import logging
import os
import signal
import time

import pytest
import structlog

from libs.logging import (
    access_log_enabled,
    configure_logging,
    get_logger,
    set_log_level,
    write_access_line,
)


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _after_signal(sig: signal.Signals) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.01)  # the handler runs between bytecodes of the main thread


def test_signals_switch_the_level_without_a_restart(capsys: pytest.CaptureFixture[str]) -> None:
    """SIGUSR1 turns info lines on, SIGUSR2 back off; warnings pass at both; the service bound
    at configuration stays on every line."""
    saved = structlog.get_config()
    root_level = logging.getLogger().level
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR1, signal.SIGUSR2)}
    try:
        configure_logging("svc", "warning")
        log = get_logger("t")
        log.info("hidden-before")
        _after_signal(signal.SIGUSR1)
        log.info("shown")
        _after_signal(signal.SIGUSR2)
        log.info("hidden-after")
        log.warning("warned")
        lines = _lines(capsys.readouterr().out)
        assert [line["event"] for line in lines] == ["shown", "warned"]
        assert {line["service"] for line in lines} == {"svc"}
    finally:
        structlog.configure(**saved)
        logging.getLogger().setLevel(root_level)
        structlog.contextvars.clear_contextvars()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_access_line_carries_what_a_structlog_line_carries(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The access log's own writer renders the same fields as a structlog line (service,
    level, ISO UTC timestamp, the caller's fields) and writes nothing at warning level."""
    saved = structlog.get_config()
    root_level = logging.getLogger().level
    try:
        configure_logging("svc", "info")
        get_logger("t").info("rpc", code="OK")
        assert access_log_enabled()
        write_access_line("rpc", code="OK", duration_ms=1.5)
        by_structlog, by_writer = _lines(capsys.readouterr().out)
        assert set(by_structlog) <= set(by_writer)
        assert by_writer["service"] == "svc" and by_writer["level"] == "info"
        assert by_writer["duration_ms"] == 1.5
        assert str(by_writer["timestamp"]).endswith("Z")
        set_log_level("warning")
        assert not access_log_enabled()
    finally:
        structlog.configure(**saved)
        logging.getLogger().setLevel(root_level)
        structlog.contextvars.clear_contextvars()
