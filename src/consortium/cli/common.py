"""What every CLI command shares: the saved profile, the SDK client, output, and error display."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from consortium.errors import ConsortiumError
from consortium.fileutil import write_private

if TYPE_CHECKING:  # the SDK (httpx) is imported when a command needs it
    from consortium.sdk.client import Client

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def profile_path() -> Path:
    return Path(os.environ.get("CONSORTIUM_CONFIG", "~/.config/consortium/cli.json")).expanduser()


def load_profile() -> dict[str, Any]:
    p = profile_path()
    return json.loads(p.read_text()) if p.exists() else {}


def save_profile(data: dict[str, Any]) -> None:
    write_private(profile_path(), json.dumps(data, indent=2).encode())


def client() -> Client:
    """The SDK client from env (CONSORTIUM_URL, CONSORTIUM_TOKEN) or the profile saved by `login`."""
    from consortium.sdk.client import Client

    prof = load_profile()
    url = os.environ.get("CONSORTIUM_URL") or prof.get("url") or "http://127.0.0.1:8000"
    token = os.environ.get("CONSORTIUM_TOKEN") or prof.get("token")
    if not token:
        err_console.print("[red]not logged in[/red]: run `consortium login` or set CONSORTIUM_TOKEN")
        raise typer.Exit(2)
    return Client(url, token, org=os.environ.get("CONSORTIUM_ORG") or prof.get("org"))


@contextmanager
def handled() -> Iterator[None]:
    """Show the hub's error as one readable line (plus its hint) and exit non-zero."""
    try:
        yield
    except ConsortiumError as e:
        err_console.print(f"[red]error[/red] ({e.code}): {e.message}")
        if e.hint:
            err_console.print(f"[dim]hint: {e.hint}[/dim]")
        raise typer.Exit(1) from None


def show(rows: Sequence[dict[str, Any]] | dict[str, Any], columns: Sequence[str] | None = None,
         as_json: bool = False, title: str | None = None) -> None:
    if as_json or not sys.stdout.isatty() and os.environ.get("CONSORTIUM_CLI_JSON"):
        console.print_json(json.dumps(rows, default=str))
        return
    if isinstance(rows, dict):
        t = Table(show_header=False, title=title)
        t.add_column(style="bold")
        t.add_column()
        for k, v in rows.items():
            t.add_row(str(k), _fmt(v))
        console.print(t)
        return
    if not rows:
        console.print("[dim](none)[/dim]")
        return
    cols = list(columns or rows[0].keys())
    t = Table(title=title)
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*[_fmt(r.get(c)) for c in cols])
    console.print(t)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return str(v)


JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")
