"""CLI commands for the foundation: login, orgs, members, invitations, tokens, grants, audit, keys."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from consortium.cli.common import (
    JSON_OPT,
    LIMIT_OPT,
    client,
    console,
    default_url,
    handled,
    load_profile,
    print_error,
    profile_path,
    save_profile,
    show,
)
from consortium.errors import ConsortiumError

login_app = typer.Typer()


def login(url: str = typer.Option(None, help="The hub's URL (default: CONSORTIUM_URL, else "
                                      "CONSORTIUM_PUBLIC_URL, else http://CONSORTIUM_HOST:CONSORTIUM_PORT, "
                                      "i.e. http://127.0.0.1:8000)."),
          token: str = typer.Option(None, help="An API token (from `tokens create` or the demo)."),
          email: str = typer.Option(None, help="Log in with email and password instead."),
          password: str = typer.Option(None, help="Password (prompted when omitted)."),
          org: str = typer.Option(None, help="Organization to act in (session logins only).")) -> None:
    """Save the hub URL and a credential for later commands, in the file CONSORTIUM_CONFIG names
    (default ~/.config/consortium/cli.json, mode 0600). CONSORTIUM_URL and CONSORTIUM_TOKEN, when
    set, override what is saved."""
    from consortium.sdk.client import Client

    url = (url or default_url()).rstrip("/")
    try:
        if token is None:
            if email is None:
                email = typer.prompt("email")
            if password is None:
                password = typer.prompt("password", hide_input=True)
            c = Client.login(url, email, password, org=org)
            token = c.token
        else:
            c = Client(url, token, org=org)
        me = c.me()
    except ConsortiumError as e:
        if not e.message.startswith(f"cannot reach the hub at {url}"):
            e.message = f"login to {url} failed: {e.message}"
        e.hint = e.hint or "is this the right hub? pass --url, or set CONSORTIUM_URL / CONSORTIUM_PORT"
        print_error(e)
        raise typer.Exit(1) from None
    save_profile({**load_profile(), "url": url, "token": token, "org": org})
    console.print(f"logged in to {url} as [bold]{me['email']}[/bold] in [bold]{me['org']}[/bold] "
                  f"({me['role']}); saved in {profile_path()}")


def whoami(as_json: bool = JSON_OPT) -> None:
    """Show who the saved credential acts as, and the organizations the user belongs to."""
    with handled():
        me = client().me()
    if as_json:
        show(me, as_json=True)
        return
    show({k: v for k, v in me.items() if k != "organizations"})
    show(me.get("organizations") or [], ["name", "display_name", "role"], title="organizations")


orgs = typer.Typer(help="Organizations on this hub.", no_args_is_help=True)


@orgs.command("list")
def orgs_list(limit: int | None = LIMIT_OPT, as_json: bool = JSON_OPT) -> None:
    """List the organizations on the hub (the directory grants refer to)."""
    with handled():
        show(client().orgs.list(limit=limit), ["name", "display_name", "description"], as_json)


@orgs.command("create")
def orgs_create(name: str = typer.Argument(..., help="lowercase letters, digits and dashes"),
                display_name: str = typer.Option("", help="Human-readable name."),
                description: str = typer.Option("", help="What the organization is."),
                as_json: bool = JSON_OPT) -> None:
    """Create an organization; you become its owner."""
    with handled():
        show(client().orgs.create(name, display_name, description), as_json=as_json)


members = typer.Typer(help="Members of your organization and their roles.", no_args_is_help=True)


@members.command("list")
def members_list(as_json: bool = JSON_OPT) -> None:
    """List members and roles."""
    with handled():
        show(client().members.list(), ["user_id", "email", "name", "role"], as_json)


@members.command("set-role")
def members_set_role(user_id: str = typer.Argument(..., help="The member's user id (`members list`)."),
                     role: str = typer.Argument(..., help="owner, admin, member or viewer"),
                     as_json: bool = JSON_OPT) -> None:
    """Change a member's role (admins; the owner role only by owners)."""
    with handled():
        show(client().members.set_role(user_id, role), as_json=as_json)


@members.command("remove")
def members_remove(user_id: str = typer.Argument(..., help="The member's user id (`members list`).")) -> None:
    """Remove a member from your organization."""
    with handled():
        client().members.remove(user_id)
    console.print("removed")


@members.command("invite")
def members_invite(email: str = typer.Argument(..., help="Whom to invite."),
                   role: str = typer.Option("member", help="Role on joining."),
                   days: int = typer.Option(7, help="Days the invitation stays valid.")) -> None:
    """Invite someone by email; prints the one-time token to give them."""
    with handled():
        inv = client().invitations.create(email, role, days)
    console.print(f"invitation {inv['id']} for {inv['email']} as {inv['role']}, valid until {inv['expires_at']}")
    console.print(f"token (shown once): [bold]{inv['token']}[/bold]")
    console.print("they accept with: consortium members accept TOKEN")


@members.command("invitations")
def members_invitations(as_json: bool = JSON_OPT) -> None:
    """List invitations of your organization."""
    with handled():
        show(client().invitations.list(), ["id", "email", "role", "expires_at", "accepted_at", "revoked_at"],
             as_json)


@members.command("accept")
def members_accept(token: str = typer.Argument(..., help="The invitation token you were given."),
                   url: str = typer.Option(None, help="The hub's URL (default as for `login`)."),
                   name: str = typer.Option("", help="Your name (new accounts)."),
                   password: str = typer.Option(..., prompt=True, hide_input=True,
                                                help="New password, or your existing one.")) -> None:
    """Accept an invitation (creates your account if the email has none)."""
    from consortium.sdk.client import Client

    with handled():
        out = Client(url or default_url()).invitations.accept(token, password, name)
    console.print(f"you are now {out['role']} of {out['org']}; log in with `consortium login --email {out['email']}`")


tokens = typer.Typer(help="API tokens: shown once, stored hashed, scoped to one organization.",
                     no_args_is_help=True)


@tokens.command("create")
def tokens_create(name: str = typer.Argument(..., help="What the token is for."),
                  role: str = typer.Option(None, help="At most your role; default yours."),
                  days: int = typer.Option(90, help="Days until it expires (max 365).")) -> None:
    """Create a token for yourself in your current organization."""
    with handled():
        t = client().tokens.create(name, role, days)
    console.print(f"token {t['id']} ({t['role']}, expires {t['expires_at']})")
    console.print(f"[bold]{t['token']}[/bold]")
    console.print("[dim]shown once: store it now[/dim]")


@tokens.command("list")
def tokens_list(limit: int | None = LIMIT_OPT, as_json: bool = JSON_OPT) -> None:
    """List tokens (admins see the whole organization's)."""
    with handled():
        show(client().tokens.list(limit=limit),
             ["id", "name", "role", "prefix", "expires_at", "revoked_at", "last_used_at"],
             as_json)


@tokens.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="The token's id (`tokens list`).")) -> None:
    """Revoke a token; it stops working at once."""
    with handled():
        t = client().tokens.revoke(token_id)
    console.print(f"revoked {t['id']} at {t['revoked_at']}")


grants = typer.Typer(help="Grants of your resources to other organizations or projects.", no_args_is_help=True)


@grants.command("create")
def grants_create(resource_type: str = typer.Argument(..., help="dataset, deployment, model, ..."),
                  resource: str = typer.Argument(..., help="id or org/name of the resource"),
                  permission: str = typer.Argument(..., help="metadata, compute, download or invoke"),
                  to: str = typer.Option(None, "--to", help="Grantee organization."),
                  project: str = typer.Option(None, help="Grantee project (all its members)."),
                  expires: datetime = typer.Option(None, help="Expiry (ISO date/time)."),
                  per_minute: int = typer.Option(None, help="invoke: requests per minute."),
                  per_day: int = typer.Option(None, help="invoke: requests per day."),
                  as_json: bool = JSON_OPT) -> None:
    """Give another organization a permission on one of your resources."""
    limits = {k: v for k, v in {"per_minute": per_minute, "per_day": per_day}.items() if v is not None}
    with handled():
        g = client().grants.create(resource_type, resource, permission, grantee_org=to, grantee_project=project,
                                   expires_at=expires, limits=limits or None)
    show(g, as_json=as_json)


@grants.command("list")
def grants_list(direction: str = typer.Option("all", help="given, received or all"), limit: int | None = LIMIT_OPT,
                as_json: bool = JSON_OPT) -> None:
    """Grants your organization gave or received."""
    with handled():
        show(client().grants.list(direction, limit=limit),
             ["id", "resource_type", "resource", "permission", "owner_org", "grantee_org", "state", "expires_at"],
             as_json)


@grants.command("revoke")
def grants_revoke(grant_id: str = typer.Argument(..., help="The grant's id (`grants list`).")) -> None:
    """Revoke a grant; it stops working at once."""
    with handled():
        g = client().grants.revoke(grant_id)
    console.print(f"revoked {g['id']} ({g['state']})")


audit = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit.command("list")
def audit_list(action: str = typer.Option(None, help="Filter by action prefix."),
               outcome: str = typer.Option(None, help="ok, not_found, permission_denied, ..."),
               limit: int = typer.Option(50, help="At most this many events."), as_json: bool = JSON_OPT) -> None:
    """Events that concern your organization, newest first."""
    with handled():
        show(client().audit.events(action=action, outcome=outcome, limit=limit),
             ["seq", "time", "action", "outcome", "actor_org_id", "resource_type", "resource_id"], as_json)


@audit.command("verify")
def audit_verify(checkpoint: list[Path] = typer.Option(None, "--checkpoint", "-c", help=(
                     "A checkpoint file saved by `audit checkpoint`; the chain must still match it "
                     "(repeat for several).")),
                 public_key: str = typer.Option(None, help="The hub's public key you kept (pins the "
                                                "checkpoints' signer); default: the key each names."),
                 offline: bool = typer.Option(False, help="Only check the checkpoints' signatures, "
                                              "without the hub."),
                 as_json: bool = JSON_OPT) -> None:
    """Walk the keyed hash chain and name the first event altered, deleted or reordered; with
    checkpoints, also fail if the chain was cut short or rewritten before one of them."""
    from consortium.sdk.resources import Audit

    with handled():
        cps = [_read_checkpoint(f) for f in checkpoint or []]
        for cp in cps:
            Audit.check_checkpoint(cp, public_key)
        if offline:
            for cp in cps:
                console.print(f"checkpoint at event {cp['seq']} ({cp['time']}): signed by audit key "
                              f"{cp['key_id']}" + ("" if public_key else f" (public key {cp.get('public_key')})"))
            return
        r = client().audit.verify(cps or None)
    if as_json:
        show(r, as_json=True)
    elif r["ok"]:
        console.print(f"[green]audit chain intact[/green]: {r['events']} events verified in {r['seconds']} s "
                      f"(audit key {r['key_id']})")
    else:
        console.print(f"[red]audit chain broken[/red] at event {r['first_bad_seq']}: {r['problem']}")
    if r.get("legacy_events"):
        console.print(f"events 1..{r['legacy_events']} were written before the chain was keyed; one seal "
                      f"made at the upgrade ({r['sealed_at']}) covers them: a change to them made before "
                      "then cannot be detected")
    if not as_json:
        for c in r.get("checkpoints", []):
            mark = "[green]matches[/green]" if c["ok"] else f"[red]fails[/red]: {c['problem']}"
            console.print(f"checkpoint at event {c['seq']} ({c['time']}): {mark}")
    if not r["ok"]:
        raise typer.Exit(1)


def _read_checkpoint(path: Path) -> dict[str, Any]:
    from consortium.errors import InvalidInput

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InvalidInput(f"cannot read the checkpoint file {path}: {e}",
                           hint="save one with `consortium audit checkpoint --out FILE`") from e
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path} does not hold one checkpoint (a JSON object)")
    return doc


@audit.command("checkpoint")
def audit_checkpoint(out: Path = typer.Option(None, "--out", "-o", help="Save it to this file (JSON).")) -> None:
    """Fetch the chain's head signed by the hub; keep the file to prove later that nothing before it
    was cut or rewritten (`audit verify --checkpoint FILE`)."""
    with handled():
        cp = client().audit.checkpoint()
    if out is not None:
        out.write_text(json.dumps(cp, indent=1) + "\n")
        console.print(f"saved the checkpoint at event {cp['seq']} to {out}")
    else:
        console.print_json(json.dumps(cp))
    console.print(f"signed by audit key {cp['key_id']}, Ed25519 public key {cp['public_key']}")


@audit.command("public-key")
def audit_public_key(as_json: bool = JSON_OPT) -> None:
    """The hub's Ed25519 key that signs checkpoints: keep it to check them offline."""
    with handled():
        show(client().audit.public_key(), as_json=as_json)


keys = typer.Typer(help="Key management (hub operators).", no_args_is_help=True)


@keys.command("status")
def keys_status(as_json: bool = JSON_OPT) -> None:
    """Show the active master key and the organization data keys it wraps."""
    with handled():
        show(client().keys.status(), as_json=as_json)


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-wrap every organization's data key under a new master key (data is not re-encrypted)."""
    with handled():
        r = client().keys.rotate()
    console.print(f"rotated: {r['rewrapped']} data keys now wrapped by {r['active_master_key']} "
                  f"(was {r['previous_master_key']})")
