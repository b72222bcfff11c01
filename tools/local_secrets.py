"""Secrets of one local installation: random, made on first use, kept in its data directory.

`./dev up`, the end-to-end stacks and `./dev bench` run in development mode, which would accept
the development values published in `libs/config.py`; anyone who read the repository could
then forge a merchant token or a signed marketplace fact against a local suite. Each data
directory gets its own keys instead (`<data dir>/secrets.json`, readable by its owner only),
kept between runs so that what they encrypted stays readable.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from libs.config import SECRETS

FILE_NAME = "secrets.json"
KEY_BYTES = 32
# Keys that only decrypt what is already stored: a data directory made before it had its own
# keys keeps reading what the published keys encrypted (signing keys are never kept: a token
# or signature made with a published key must fail).
_DECRYPT_ONLY_LEGACY = ("PHONE_VAULT_KEYS", "ISV_SECRET_KEYS")


def _random_value(kind: str) -> str:
    key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    return f"local:{key}" if kind == "keyring" else key


def generate(*, legacy: bool) -> dict[str, str]:
    """A random value for every key-type secret (connection URLs are the stack's own)."""
    values = {name: _random_value(spec.kind) for name, spec in SECRETS.items()
              if spec.kind in ("keyring", "base64")}
    if legacy:
        for name in _DECRYPT_ONLY_LEGACY:
            values[name] = f"{values[name]},{SECRETS[name].dev_value}"
    return values


def load_or_create(data_dir: Path) -> dict[str, str]:
    """This data directory's secrets; made (owner-only file) the first time."""
    path = data_dir / FILE_NAME
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        # A secret declared after this directory was made gets its own key now, rather than
        # the published development value.
        added = {name: value for name, value in generate(legacy=False).items()
                 if name not in stored}
        if added:
            stored.update(added)
            path.write_text(json.dumps(stored, indent=2))
        return stored
    data_dir.mkdir(parents=True, exist_ok=True)
    # A data directory that already holds a database was made with the published keys.
    values = generate(legacy=(data_dir / "postgres").exists())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(values, handle, indent=2)
    return values
