"""structlog JSON logging to stdout, with the current trace id on every line."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from opentelemetry import trace

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


class _AccessLog:
    """What the access log needs from the configuration, kept where a call can read it."""

    level = logging.INFO
    service = ""
    out: TextIO = sys.stdout


_access = _AccessLog()


def _add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Stamp the active span's ids so log lines join up with traces."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def configure_logging(service: str, level: str = "info") -> None:
    """JSON lines at `level`; SIGUSR1/SIGUSR2 switch the level while the process runs."""
    _access.level, _access.service, _access.out = _LEVELS[level], service, sys.stdout
    logging.basicConfig(stream=sys.stdout, level=_LEVELS[level], format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace_ids,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    install_log_level_signals()


def set_log_level(level: str) -> None:
    """Change the level of a configured process while it runs, without touching its
    processors or bound context."""
    _access.level = _LEVELS[level]
    logging.getLogger().setLevel(_LEVELS[level])
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]))


def install_log_level_signals() -> None:
    """SIGUSR1: log at info; SIGUSR2: log at warning. Lets an operator (or `./dev bench`,
    which measures every scenario at both) change the level without a restart. Signal
    handlers belong to the main thread; elsewhere (a test's helper thread) nothing is set."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGUSR1, lambda *_: set_log_level("info"))
    signal.signal(signal.SIGUSR2, lambda *_: set_log_level("warning"))


def access_log_enabled() -> bool:
    """Whether access lines are written (info level): a check that costs nothing per call."""
    return _access.level <= logging.INFO


def write_access_line(event: str, **fields: Any) -> None:
    """One info line per request, as structlog would render it (the fields, the service,
    level, ISO timestamp, trace and span ids) but built with one dict and one json.dumps: the
    processor chain costs about 18 µs a line, this about a third of it (docs/performance.md).
    Callers check `access_log_enabled()` first, so a quiet process builds nothing."""
    line = {**fields, "event": event, "service": _access.service, "level": "info",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        line["trace_id"] = format(context.trace_id, "032x")
        line["span_id"] = format(context.span_id, "016x")
    _access.out.write(json.dumps(line, default=repr) + "\n")
    _access.out.flush()


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
