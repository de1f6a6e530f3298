"""What every CLI command shares: the saved profile, the SDK client, output, and error display."""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from consortium.errors import ConsortiumError, InvalidInput, NotFound
from consortium.fileutil import write_private

if TYPE_CHECKING:  # the SDK (httpx) is imported when a command needs it
    from consortium.sdk.client import Client

# Piped output (not a terminal) is never wrapped or cut: an id stays on one line, whole.
console = Console(soft_wrap=not sys.stdout.isatty())
err_console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())
DEFAULT_PORT = 8000
F = TypeVar("F", bound=Callable[..., Any])


def profile_path() -> Path:
    return Path(os.environ.get("CONSORTIUM_CONFIG", "~/.config/consortium/cli.json")).expanduser()


def load_profile() -> dict[str, Any]:
    p = profile_path()
    return json.loads(p.read_text()) if p.exists() else {}


def save_profile(data: dict[str, Any]) -> None:
    write_private(profile_path(), json.dumps(data, indent=2).encode())


def default_url() -> str:
    """The hub this machine runs, as the hub itself computes it: ``CONSORTIUM_URL``, else
    ``CONSORTIUM_PUBLIC_URL``, else ``http://CONSORTIUM_HOST:CONSORTIUM_PORT`` (127.0.0.1:8000).

    >>> os.environ.pop("CONSORTIUM_URL", None) and None
    >>> os.environ.pop("CONSORTIUM_PUBLIC_URL", None) and None
    >>> os.environ["CONSORTIUM_PORT"] = "8123"; default_url()
    'http://127.0.0.1:8123'
    >>> del os.environ["CONSORTIUM_PORT"]
    """
    explicit = os.environ.get("CONSORTIUM_URL") or os.environ.get("CONSORTIUM_PUBLIC_URL")
    if explicit:
        return explicit.rstrip("/")
    host = os.environ.get("CONSORTIUM_HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - the hub listens everywhere: this machine answers on loopback
        host = "127.0.0.1"
    port = os.environ.get("CONSORTIUM_PORT") or str(DEFAULT_PORT)
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def client() -> Client:
    """The SDK client from env (CONSORTIUM_URL, CONSORTIUM_TOKEN) or the profile saved by `login`."""
    from consortium.sdk.client import Client

    prof = load_profile()
    url = os.environ.get("CONSORTIUM_URL") or prof.get("url") or default_url()
    token = os.environ.get("CONSORTIUM_TOKEN") or prof.get("token")
    if not token:
        err_console.print("[red]not logged in[/red]: run `consortium login` or set CONSORTIUM_TOKEN")
        raise typer.Exit(2)
    return Client(url, token, org=os.environ.get("CONSORTIUM_ORG") or prof.get("org"))


def print_error(e: ConsortiumError) -> None:
    """One line for the error (its code and message), one for its hint."""
    err_console.print(f"[red]error[/red] ({e.code}): {escape(e.message)}")
    if e.hint:
        err_console.print(f"[dim]hint: {escape(e.hint)}[/dim]")


@contextmanager
def handled(kind: str | None = None, name: str | None = None) -> Iterator[None]:
    """Show the hub's error as one readable line (plus its hint) and exit non-zero. With ``kind``
    (``deployment``, ``model``, ``dataset``, ``project``) and the ``name`` the user typed, a 404
    suggests close names from the caller's own listing, so only names the caller can see."""
    try:
        yield
    except NotFound as e:
        if kind and name:
            close = similar_names(kind, name)
            if close:
                e.hint = f"did you mean {' or '.join(close)}?" + (f" (else: {e.hint})" if e.hint else "")
        print_error(e)
        raise typer.Exit(1) from None
    except ConsortiumError as e:
        print_error(e)
        raise typer.Exit(1) from None


def _listing(kind: str) -> list[str]:
    c = client()
    if kind == "deployment":
        deps = c.deployments.list()
        return [str(d["name"]) for d in deps] + [f"{d['org']}~{d['name']}" for d in deps if d.get("org")]
    if kind == "model":
        names = [str(m["name"]) for m in c.models.list()]
        return names + [n.rpartition("/")[2] for n in names]
    if kind == "dataset":
        sets = c.datasets.list()
        return [str(d["full_name"]) for d in sets] + [str(d["name"]) for d in sets]
    if kind == "project":
        return [str(p["name"]) for p in c.projects.list()]
    return []


def similar_names(kind: str, name: str) -> list[str]:
    """Up to three names of ``kind`` close to ``name`` among those the caller lists (the hub's
    own listing, which shows only what the caller may see); none if the listing fails."""
    try:
        names = sorted(set(_listing(kind)) - {name})
    except ConsortiumError:
        return []
    qualified = "/" in name or "~" in name  # answer in the form the user typed
    same_form = [n for n in names if ("/" in n or "~" in n) == qualified]
    return difflib.get_close_matches(name, same_form, n=3, cutoff=0.6)


def json_arg(value: str, what: str = "inputs", example: str = "[[1.0, 2.0, 3.0]]") -> Any:
    """A JSON argument given inline or as ``@file.json``: an unreadable file or malformed JSON is
    an ``InvalidInput`` naming the file (or the argument) and what a good one looks like."""
    source = what
    text = value
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        source = str(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise InvalidInput(f"cannot read {what} from {path}: {e.strerror or e}",
                               hint=f"give a JSON file that exists (@path/to/file.json) or the JSON itself, "
                                    f"e.g. '{example}'") from None
        except UnicodeDecodeError:
            raise InvalidInput(f"{path} is not a text file", hint=f"{what} is JSON text, e.g. '{example}'") from None
    try:
        return json.loads(text)
    except ValueError as e:
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
        raise InvalidInput(f"{source} is not valid JSON: {msg}{where}",
                           hint=f"{what} looks like '{example}'; a file is given as @file.json") from None


class CliGroup(TyperGroup):
    """The ``consortium`` command's group: whatever a command raises ends as one line on stderr
    (and a hint) with exit status 1, never a Python traceback. ``CONSORTIUM_DEBUG=1`` re-raises
    an unexpected error, for its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except ConsortiumError as e:
            print_error(e)
        except Exception as e:
            if os.environ.get("CONSORTIUM_DEBUG"):
                raise
            if isinstance(e, OSError):
                where = f" {e.filename}" if e.filename else ""
                print_error(InvalidInput(f"cannot use{where}: {e.strerror or e}",
                                         hint="check the path and its permissions"))
            elif isinstance(e, ValueError):
                print_error(InvalidInput(str(e) or type(e).__name__, hint="check the value you gave "
                                         "(`consortium COMMAND --help` describes each)"))
            else:
                err_console.print(f"[red]internal error[/red]: {type(e).__name__}: {escape(str(e))}")
                err_console.print("[dim]hint: this is a bug; run again with CONSORTIUM_DEBUG=1 for the "
                                  "traceback and report it[/dim]")
        raise typer.Exit(1)


def show(rows: Sequence[dict[str, Any]] | dict[str, Any], columns: Sequence[str] | None = None,
         as_json: bool = False, title: str | None = None) -> None:
    """``rows`` as a table (a dict as key/value lines), or as JSON with ``as_json``. On a terminal
    a Rich table whose identifier columns never wrap; piped, plain aligned text that cuts nothing.
    Numbers are shown to 4 significant digits, nested values as ``key=value`` lists."""
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    if isinstance(rows, dict):
        pairs = [(str(k), fmt(v)) for k, v in rows.items()]
        if not console.is_terminal:
            if title:
                console.print(escape(title))
            width = max((len(k) for k, _ in pairs), default=0)
            for k, v in pairs:
                console.print(escape(f"{k.ljust(width)}  {v}"), highlight=False)
            return
        t = Table(show_header=False, title=title)
        t.add_column(style="bold", no_wrap=True)
        t.add_column(overflow="fold")
        for k, v in pairs:
            t.add_row(escape(k), escape(v))
        console.print(t)
        return
    if not rows:
        console.print("[dim](none)[/dim]")
        return
    cols = list(columns or rows[0].keys())
    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    if not console.is_terminal:
        if title:
            console.print(escape(title))
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
        for row in [cols, *cells]:
            console.print(escape("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()),
                          highlight=False)
        return
    t = Table(title=title)
    for i, c in enumerate(cols):
        if _is_identifier(c):  # ids and names stay whole, on one line
            t.add_column(c, no_wrap=True, min_width=max(len(c), *(len(row[i]) for row in cells)))
        else:
            t.add_column(c, overflow="fold")
    for row in cells:
        t.add_row(*[escape(v) for v in row])
    console.print(t)


def _is_identifier(column: str) -> bool:
    return column in {"id", "name", "full_name", "seq", "prefix", "org", "model", "deployment", "dataset",
                      "resource", "job_id", "user_id", "version", "email"} or column.endswith("_id")


def fmt(v: Any) -> str:
    """A value as a table shows it.

    >>> fmt(0.9736842105263158), fmt(1761.0), fmt(12345.678), fmt(3), fmt(None), fmt(True)
    ('0.9737', '1761', '12,346', '3', '-', 'yes')
    >>> fmt({"accuracy": 0.96491228, "cv": {"folds": 5}}), fmt(["a", 1.5])
    ('accuracy=0.9649, cv=(folds=5)', 'a, 1.5')
    """
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v)) if abs(v) < 10_000 else f"{int(v):,}"
        if abs(v) >= 10_000:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_nested(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_nested(x) for x in v)
    return str(v)


def _nested(v: Any) -> str:
    return f"({fmt(v)})" if isinstance(v, (dict, list, tuple)) and len(v) > 1 or isinstance(v, dict) else fmt(v)


JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")
LIMIT_OPT = typer.Option(None, "--limit", min=1, help="At most this many (default: all, fetched page by page).")
