"""The CLI as a newcomer meets it (issue 21, points 14-17): ``login`` finds the hub this machine
runs and names the URL it tried; no user error prints a traceback; tables for people, ``--json``
for scripts, nothing cut when piped; help on every command and option; "did you mean" for
misspelt commands and for resource names the caller can see (never for names it cannot).

Most commands run in-process through Typer's runner against a real uvicorn hub (fast); the
piped-output and traceback checks run the installed ``consortium`` script as a subprocess."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
from registry_models import constant_classifier

from consortium.cli.main import app
from consortium.store.db import transaction

BIN = Path(sys.executable).parent / "consortium"


def cli(args: list[str], env: dict[str, str], code: int = 0) -> Any:
    r = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert r.exit_code == code, (r.exit_code, r.output)
    return r


def script(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed command with stdout a pipe (not a terminal), as in `consortium ... | grep`."""
    return subprocess.run([str(BIN), *args], env={**os.environ, "COLUMNS": "60", **env}, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def owner(world: Any) -> Any:
    return world.actor(world.org(f"cli-conv-{os.getpid() % 9973}"), "admin")


@pytest.fixture(scope="module")
def env(owner: Any, live_url: str) -> dict[str, str]:
    return {"CONSORTIUM_URL": live_url, "CONSORTIUM_TOKEN": owner.token}


@pytest.fixture(scope="module")
def deployment(http: Any, services: Any, owner: Any) -> str:
    from consortium.registry import models as reg

    with transaction(services.session_factory) as s:
        reg.register_version(s, owner.org_id, "heart-risk-classifier", onnx=constant_classifier(1),
                             blobs=services.blobs, metrics={"accuracy": 0.9736842105263158, "loss": 0.0812345678})
    name = "heart-risk-scoring"
    r = http.post("/api/v1/deployments", json={"name": name, "model": "heart-risk-classifier"},
                  headers=owner.headers)
    assert r.status_code == 201, r.text
    return name


# -- 14 login ----------------------------------------------------------------------------------

def test_login_defaults_to_consortium_port_and_names_the_url(live_url: str, owner: Any, tmp_path: Path) -> None:
    port = live_url.rsplit(":", 1)[1]
    cfg = tmp_path / "cli.json"
    base = {"CONSORTIUM_CONFIG": str(cfg), "CONSORTIUM_URL": "", "CONSORTIUM_PUBLIC_URL": "", "CONSORTIUM_HOST": ""}
    out = cli(["login", "--token", owner.token], {**base, "CONSORTIUM_PORT": port}).output
    assert f"logged in to {live_url}" in out and str(cfg) in out
    assert json.loads(cfg.read_text())["url"] == live_url
    # CONSORTIUM_PUBLIC_URL wins over host and port, as on the hub
    cli(["login", "--token", owner.token], {**base, "CONSORTIUM_PUBLIC_URL": live_url, "CONSORTIUM_PORT": "1"})
    # nothing listens there: the error names the URL it asked, on one line, with a hint
    with socket.socket() as held:  # bound, never listening: nothing else can take the port meanwhile
        held.bind(("127.0.0.1", 0))
        dead = held.getsockname()[1]
        r = cli(["login", "--token", owner.token], {**base, "CONSORTIUM_PORT": str(dead)}, code=1)
    assert f"http://127.0.0.1:{dead}" in r.output and "Traceback" not in r.output and "hint:" in r.output
    # a hub that refuses the token: the message still says which hub
    r = cli(["login", "--url", live_url, "--token", "csm_tok_not-a-token"], base, code=1)
    assert f"login to {live_url} failed" in r.output
    helptext = cli(["login", "--help"], {}).output
    assert "CONSORTIUM_CONFIG" in helptext and "CONSORTIUM_PORT" in helptext
    assert "CONSORTIUM_CONFIG" in cli(["--help"], {}).output
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "CONSORTIUM_CONFIG" in readme


# -- 15 no tracebacks ---------------------------------------------------------------------------

def test_bad_files_and_json_are_one_line_errors_with_a_hint(env: dict[str, str], tmp_path: Path,
                                                            deployment: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[[1, 2,, 3]]')
    binary = tmp_path / "blob.json"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    cases = [
        (["deployments", "predict", deployment, "@" + str(tmp_path / "missing.json")], "missing.json"),
        (["deployments", "predict", deployment, "@" + str(bad)], "not valid JSON"),
        (["deployments", "predict", deployment, "@" + str(binary)], "not a text file"),
        (["deployments", "predict", deployment, "[[1, 2"], "not valid JSON"),
        (["deployments", "predict", deployment, "@" + str(tmp_path)], str(tmp_path)),  # a directory
        (["models", "explain", "heart-risk-classifier", "{oops"], "not valid JSON"),
        (["audit", "verify", "--checkpoint", str(bad)], "cannot read the checkpoint file"),
        (["feedback", deployment, "not-a-prediction-id", "1"], "error"),
    ]
    for args, needle in cases:
        r = cli(args, env, code=1)
        assert needle in r.output, (args, r.output)
        assert "Traceback" not in r.output and "hint:" in r.output or args[0] == "feedback", (args, r.output)
    # the installed script, through the top-level handler: still no traceback
    p = script(["deployments", "predict", deployment, "@" + str(tmp_path / "missing.json")], env)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "missing.json" in p.stderr
    assert len([x for x in p.stderr.splitlines() if x.strip()]) == 2, p.stderr  # the error and its hint


def test_the_top_level_handler_turns_any_exception_into_one_line(env: dict[str, str], tmp_path: Path) -> None:
    """Whatever escapes a command (here: a file the user names cannot be written) ends as one
    line and exit status 1; CONSORTIUM_DEBUG=1 gives the traceback back."""
    target = tmp_path / "no-such-dir" / "c.json"
    r = cli(["audit", "checkpoint", "--out", str(target)], env, code=1)
    assert "Traceback" not in r.output and "no-such-dir" in r.output
    with pytest.raises(OSError):
        CliRunner().invoke(app, ["audit", "checkpoint", "--out", str(target)],
                           env={**env, "CONSORTIUM_DEBUG": "1"}, catch_exceptions=False)
    # a usage error stays click's: exit 2 with its usage line
    r = CliRunner().invoke(app, ["deployments", "usage", "x", "--minutes", "many"], env=env)
    assert r.exit_code == 2 and "many" in r.output


# -- 16 tables, --json, help, piped output ---------------------------------------------------------

def test_human_tables_by_default_and_json_on_request(env: dict[str, str], owner: Any, deployment: str) -> None:
    who = cli(["whoami"], env).output
    assert "organizations" in who and owner.org in who and "{" not in who  # a table, not raw JSON
    assert json.loads(cli(["whoami", "--json"], env).output)["organizations"][0]["name"] == owner.org
    card = cli(["models", "show", "heart-risk-classifier"], env).output
    assert "accuracy=0.9737" in card and "0.9736842105263158" not in card and "{" not in card
    assert "loss=0.08123" in card
    versions = cli(["models", "versions", "heart-risk-classifier"], env).output
    assert "0.9737" in versions and "0.97368421" not in versions
    listed = json.loads(cli(["models", "versions", "heart-risk-classifier", "--json"], env).output)
    listed = listed["items"] if isinstance(listed, dict) else listed  # a page, while the SDK catches up
    assert listed[0]["metrics"]["accuracy"] == 0.9736842105263158
    show = cli(["deployments", "show", deployment], env).output
    assert "endpoint predict" in show and "/v2/models/" in show and "{" not in show
    assert json.loads(cli(["deployments", "show", deployment, "--json"], env).output)["name"] == deployment
    pred = cli(["deployments", "predict", deployment, "[[1, 2, 3, 4]]"], env).output
    assert re.search(r'predictions\s+\[\[', pred), pred  # a JSON list, as the README's tour shows
    usage = cli(["deployments", "usage", deployment, "--json"], env).output
    assert json.loads(usage)["deployment"] == deployment


def test_deploy_shows_endpoints_as_lines(env: dict[str, str], deployment: str) -> None:
    out = cli(["deploy", "heart-risk-classifier", "--name", "heart-risk-two"], env).output
    assert "open inference" in out and "predict" in out and "'predict':" not in out and "{" not in out
    assert json.loads(cli(["deployments", "delete", "heart-risk-two", "--json"], env).output)["deleted"] is True


def test_piped_output_never_cuts_identifiers(env: dict[str, str], deployment: str, owner: Any) -> None:
    """COLUMNS=60 and stdout a pipe: a Rich table would cut ``heart-risk-classifier`` to
    ``heart-ri…``; piped output is plain aligned text with every value whole, one row a line."""
    p = script(["deployments", "list"], env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["name", "org", "model"]
    row = next(x for x in lines if x.startswith(deployment + " "))
    assert f"{owner.org}/heart-risk-classifier" in row and "…" not in p.stdout
    who = script(["whoami"], env).stdout
    assert owner.email in who and owner.org in who


def test_every_command_and_option_has_help() -> None:
    """A walk of the whole command tree: every group, command, option and argument has help text
    (the review found `models versions`, `deployments list/show/usage` empty)."""
    missing = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if not (cmd.help or "").strip():
            missing.append(" ".join(path) or "consortium")
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
            return
        for p in cmd.params:
            if p.name != "help" and not getattr(p, "hidden", False) and not getattr(p, "help", None):
                missing.append(f"{' '.join(path)} {p.name}")

    root = typer.main.get_command(app)
    walk(root, [])
    assert not missing, missing
    assert isinstance(root, click.Group) and len(root.commands) > 20


def test_commands_that_print_a_resource_offer_json() -> None:
    """--json everywhere a command prints a resource or a list (the commands that stream, write a
    file, run a process or only confirm are listed)."""
    plain = {"up", "serve", "worker", "node", "login", "jobs submit", "jobs watch", "jobs logs", "models plot",
             "models explain", "datasets download", "members remove", "members invite", "members accept",
             "tokens create", "tokens revoke", "grants revoke", "projects create", "projects invite",
             "projects accept", "projects decline", "projects leave", "projects remove", "projects grant",
             "nodes approve", "nodes reject", "nodes add-data", "audit checkpoint", "keys rotate",
             "audit export"}
    lacking = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
            return
        if " ".join(path) not in plain and not any("--json" in getattr(p, "opts", []) for p in cmd.params):
            lacking.append(" ".join(path))

    walk(typer.main.get_command(app), [])
    assert not lacking, lacking


# -- 17 did you mean ----------------------------------------------------------------------------------

def test_misspelt_commands_get_a_suggestion() -> None:
    r = CliRunner().invoke(app, ["deploymnts", "list"])
    assert r.exit_code == 2 and "Did you mean 'deployments'" in r.output
    r = CliRunner().invoke(app, ["jobs", "lst"])
    assert r.exit_code == 2 and "Did you mean 'list'" in r.output


def test_misspelt_names_suggest_only_what_the_caller_can_see(env: dict[str, str], deployment: str,
                                                              world: Any, http: Any, services: Any,
                                                              live_url: str) -> None:
    r = cli(["deployments", "show", "heart-risk-scorng"], env, code=1)
    assert "did you mean heart-risk-scoring" in r.output, r.output
    r = cli(["models", "show", "heart-risk-clasifier"], env, code=1)
    assert "did you mean heart-risk-classifier" in r.output, r.output
    r = cli(["deployments", "predict", "hart-risk-scoring", "[[1, 2, 3, 4]]"], env, code=1)
    assert "did you mean heart-risk-scoring" in r.output
    # another organization, with no grant: the same typo gets no hint naming the other's deployment
    stranger = world.actor(world.org(), "admin")
    other = {"CONSORTIUM_URL": live_url, "CONSORTIUM_TOKEN": stranger.token}
    r = cli(["deployments", "show", "heart-risk-scorng"], other, code=1)
    assert "heart-risk-scoring" not in r.output and "did you mean" not in r.output
    # nothing close: no hint made up
    r = cli(["deployments", "show", "zzzz"], env, code=1)
    assert "did you mean" not in r.output
