"""`./dev admin` reaches the suite `./dev up` started with the same PORT_OFFSET."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.stack_helpers import start, stop
from tools.stack import ROOT

pytestmark = pytest.mark.e2e


def admin(data_dir: Path, offset: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a shell would: no addresses in the environment, only PORT_OFFSET (and
    DATA_DIR, where `./dev up` keeps the operator certificate)."""
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_ADDR") and k not in ("DATABASE_URL", "REDIS_URL", "TLS_DIR")}
    env.update({"DATA_DIR": str(data_dir), "PORT_OFFSET": str(offset),
                "BRANDCLUB_ENV": "development"})
    return subprocess.run([sys.executable, "-m", "tools.admin", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_admin_follows_port_offset(tmp_path: Path) -> None:
    """With PORT_OFFSET=N, `./dev admin create-brand` and `create-shop` succeed against
    `PORT_OFFSET=N ./dev up` (before the fix they went to the default ports and failed)."""
    offset = random.randrange(2000, 9000, 10)
    process, _ = start(tmp_path, offset)
    try:
        brand = admin(tmp_path, offset, "create-brand", "--name", "Offset Co")
        assert brand.returncode == 0, brand.stderr
        brand_id = json.loads(brand.stdout)["brand_id"]
        shop = admin(tmp_path, offset, "create-shop", "--brand-id", brand_id, "--name", "S1")
        assert shop.returncode == 0, shop.stderr
        assert json.loads(shop.stdout)["brand_id"] == brand_id
    finally:
        output = stop(process)
    assert process.returncode == 0, output
