"""Development-only process supervisor for Tilt live update (copied into the `dev` image stage).

A gRPC server does not reload its own code, and restarting the container would throw away the
files Tilt has just synced. So in the dev image the container's first process is this
supervisor: it runs the service as a child, and whenever the trigger file changes (the Tiltfile's
last live-update step writes to it) it stops the child with SIGTERM, which makes the server drain
as it would in a rollout, and starts it again. SIGTERM or SIGINT to the supervisor is passed on
to the child. If the child exits by itself (say, a syntax error just synced in), the supervisor
waits for the next change instead of letting the container restart, which would lose the synced
files.

    python /opt/tilt/supervise.py --trigger /tmp/.tilt-restart -- python -m services.identity
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

POLL_SECONDS = 0.25


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_mtime_ns, info.st_size


def _stop(child: subprocess.Popen[bytes], grace: float) -> int:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return child.returncode


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="supervise.py", usage="%(prog)s --trigger FILE [--grace SECONDS] -- COMMAND..."
    )
    parser.add_argument("--trigger", type=Path, required=True, help="file whose change restarts")
    parser.add_argument("--grace", type=float, default=25.0, help="seconds to wait for a drain")
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the command to supervise after --")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    trigger: Path = args.trigger
    grace: float = args.grace
    command = argv[split + 1 :]

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    seen = _stamp(trigger)
    child: subprocess.Popen[bytes] | None = None
    while True:
        if child is None:
            child = subprocess.Popen(command)
            print(f"supervise: started pid {child.pid}: {' '.join(command)}", file=sys.stderr)
        if stopping:
            return _exit_status(_stop(child, grace))
        current = _stamp(trigger)
        if current != seen:
            seen = current
            print("supervise: code changed, restarting", file=sys.stderr)
            _stop(child, grace)
            child = None
            continue
        already_reported = child.returncode is not None
        status = child.poll()
        if status is not None and not already_reported:
            print(
                f"supervise: exited with status {_exit_status(status)};"
                " waiting for the next change",
                file=sys.stderr,
            )
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
