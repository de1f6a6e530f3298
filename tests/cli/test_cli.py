"""The CLI as a user runs it: a subprocess against a real hub, through the SDK."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent / "consortium"


def run(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([str(BIN), *args], env={**os.environ, **env, "COLUMNS": "200"}, capture_output=True,
                       text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_cli_login_tokens_audit(live_url: str, world: Any, tmp_path: Path) -> None:
    a = world.actor(world.org())
    env = {"CONSORTIUM_CONFIG": str(tmp_path / "cli.json")}
    out = run(["login", "--url", live_url, "--token", a.token], env).stdout
    assert a.org in out
    assert oct((tmp_path / "cli.json").stat().st_mode & 0o777) == "0o600"
    assert a.email in run(["whoami"], env).stdout
    created = run(["tokens", "create", "from-cli", "--days", "3"], env).stdout
    assert "csm_tok_" in created and "shown once" in created
    assert "from-cli" in run(["tokens", "list"], env).stdout
    assert "intact" in run(["audit", "verify"], env).stdout
    bad = run(["grants", "create", "nonsense", "x", "compute", "--to", "nobody"], env, check=False)
    assert bad.returncode == 1 and "unknown resource type" in bad.stderr
    help_text = run(["grants", "create", "--help"], env).stdout
    assert "download" in help_text and "Grantee organization" in help_text
