"""examples/deploy/ as the tests read it: its systemd units parsed, its files copied with their
paths, addresses and intervals pointed elsewhere (each change named, and each required to be
in the shipped file), and the credentials directories systemd would make for its units.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import ROOT

__all__ = [
    "BINARY", "CONFIG", "CREDENTIALS", "DEPLOY", "SERVICES", "UNITS", "Unit", "alert_expr",
    "alert_names", "credential_names", "credentials_dir", "make_credentials",
    "prometheus_config", "read_unit", "rewrite", "run", "value", "values", "whsec",
]  # fmt: skip

DEPLOY = ROOT / "examples" / "deploy"
"""The folder of the production layout."""
UNITS = ("receiver.socket", "receiver.service", "receiver-worker.service")
"""Its systemd units."""
SERVICES = {"serve": "receiver.service", "worker": "receiver-worker.service"}
"""The service unit of each role."""
BINARY = "/opt/receiver/.venv/bin/receiver"
"""Where the units expect the receiver (the README's install)."""
CONFIG = "/etc/receiver/receiver.toml"
"""Where the units expect receiver.toml."""
CREDENTIALS = "/run/credentials/"
"""Where systemd puts each unit's credentials (`/run/credentials/<unit>/`, `%d`)."""

Unit = dict[str, list[tuple[str, str]]]
"""A parsed unit file: section name to its (key, value) lines."""


def read_unit(path: Path) -> Unit:
    """A unit file's sections, each a list of (key, value) in order (keys may repeat)."""
    sections: Unit = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}: not a key=value line: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: Unit, key: str, section: str = "Service") -> list[str]:
    """Every value of `key` in `section`."""
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit: Unit, key: str, section: str = "Service") -> str:
    """The one value of `key` in `section`."""
    found = values(unit, key, section)
    assert len(found) == 1, f"{key} in [{section}]: {found}"
    return found[0]


def rewrite(text: str, changes: Mapping[str, str]) -> str:
    """`text` with each key replaced by its value; every key must be in it."""
    for old, new in changes.items():
        assert old in text, f"{old!r} is no longer in the shipped file: update this test"
        text = text.replace(old, new)
    return text


def run(*command: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    """Run a tool; its output (stdout and stderr together) in `.stdout`."""
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
        stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"},
    )  # fmt: skip


def alert_names() -> list[str]:
    """The alerts alerts.yml defines."""
    return re.findall(r"^\s+- alert: (\w+)$", (DEPLOY / "alerts.yml").read_text(), re.M)


def alert_expr(name: str) -> str:
    """The one-line expression of alert `name`."""
    text = (DEPLOY / "alerts.yml").read_text()
    found = re.search(rf"- alert: {name}\n\s+expr: (.+)\n", text)
    assert found and not found.group(1).startswith("|"), f"{name} has no one-line expr"
    return found.group(1)


# -- alert rules ---------------------------------------------------------------------------


def prometheus_config(folder: Path, ca: Path, token: Path, extra: Mapping[str, str]) -> Path:
    """prometheus.yml and alerts.yml in `folder`, the CA and token files at `ca` and `token`."""
    shutil.copy(DEPLOY / "alerts.yml", folder)
    text = rewrite(
        (DEPLOY / "prometheus.yml").read_text(),
        {
            "/etc/ssl/certs/ca-certificates.crt": str(ca),
            "/etc/prometheus/receiver-admin-token": str(token),
            **extra,
        },
    )
    (folder / "prometheus.yml").write_text(text)
    return folder / "prometheus.yml"


def credential_names(role: str) -> set[str]:
    """The credentials the role's unit loads."""
    unit = read_unit(DEPLOY / SERVICES[role])
    return {c.split(":", 1)[0] for c in values(unit, "LoadCredential")}


def whsec() -> str:
    """A fresh Standard Webhooks secret."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def make_credentials(root: Path, roles: tuple[str, ...]) -> dict[str, str]:
    """Each role's credential files under `root`/run/credentials/<unit>/, as systemd makes
    them; the secrets by name."""
    made = {
        "enreach-secret": "deploy-" + secrets.token_hex(12),
        "admin-token": secrets.token_hex(32),
        "analytics-signing-secret": whsec(),
        "crm-api-key": secrets.token_hex(16),
    }
    for role in roles:
        folder = root / CREDENTIALS.strip("/") / SERVICES[role]
        folder.mkdir(parents=True)
        for name in credential_names(role):
            (folder / name).write_text(made[name] + "\n")
            (folder / name).chmod(0o400)
    return made


def credentials_dir(root: Path, role: str) -> Path:
    """`%d` of the role's unit under `root`."""
    return root / CREDENTIALS.strip("/") / SERVICES[role]
