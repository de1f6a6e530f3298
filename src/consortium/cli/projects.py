"""CLI: projects, the unit of collaboration between organizations."""

from __future__ import annotations

import typer

from consortium.cli.common import JSON_OPT, client, console, handled, show

projects = typer.Typer(help="Projects: collaboration spaces several organizations join.", no_args_is_help=True)
PROJECT_ARG = typer.Argument(..., help="The project's name (or org~name).")
ORG_ARG = typer.Argument(..., help="An organization's name (`orgs list`).")


@projects.command("create")
def create(name: str = typer.Argument(..., help="lowercase letters, digits and dashes"),
           purpose: str = typer.Option(..., help="What the project is for."),
           terms: str = typer.Option("metadata,compute,invoke",
                                     help="Comma-separated permissions members extend to the project."),
           per_minute: int = typer.Option(None, help="Default invoke quota per member, per minute."),
           per_day: int = typer.Option(None, help="Default invoke quota per member, per day.")) -> None:
    """Create a project; your organization becomes its lead."""
    quota = {k: v for k, v in {"per_minute": per_minute, "per_day": per_day}.items() if v}
    with handled():
        p = client().projects.create(name, purpose, [t.strip() for t in terms.split(",") if t.strip()],
                                     quota or None)
    console.print(f"created project [bold]{p['name']}[/bold] with terms {', '.join(p['terms'])}")


@projects.command("list")
def list_(as_json: bool = JSON_OPT) -> None:
    """Projects your organization is in or invited to."""
    with handled():
        show(client().projects.list(), ["name", "purpose", "terms", "your_role", "your_state"], as_json)


@projects.command("show")
def show_(name: str = PROJECT_ARG, as_json: bool = JSON_OPT) -> None:
    """A project's terms and members."""
    with handled("project", name):
        p = client().projects.get(name)
    if as_json:
        show(p, as_json=True)
        return
    show({k: p[k] for k in ("name", "purpose", "terms", "default_quota", "created_by", "your_role")})
    show(p["members"], ["org", "role", "state", "quota", "joined_at"], title="members")


@projects.command("invite")
def invite(name: str = PROJECT_ARG, org: str = ORG_ARG) -> None:
    """Invite an organization (lead organizations)."""
    with handled():
        client().projects.invite(name, org)
    console.print(f"invited {org}; an admin of {org} accepts with `consortium projects accept {name}`")


@projects.command("accept")
def accept(name: str = PROJECT_ARG) -> None:
    """Accept your organization's invitation (admins or owners)."""
    with handled():
        client().projects.accept(name)
    console.print(f"your organization is now a member of {name}")


@projects.command("decline")
def decline(name: str = PROJECT_ARG) -> None:
    """Decline your organization's invitation."""
    with handled():
        client().projects.decline(name)
    console.print("declined")


@projects.command("leave")
def leave(name: str = PROJECT_ARG) -> None:
    """Leave a project; grants to it stop applying to your organization at once."""
    with handled():
        client().projects.leave(name)
    console.print(f"left {name}")


@projects.command("remove")
def remove(name: str = PROJECT_ARG, org: str = ORG_ARG) -> None:
    """Remove a member organization (lead organizations)."""
    with handled():
        client().projects.remove(name, org)
    console.print(f"removed {org} from {name}")


@projects.command("grant")
def grant(name: str = PROJECT_ARG, resource_type: str = typer.Argument(..., help="dataset, deployment, ..."),
          resource: str = typer.Argument(..., help="org/name or id of your resource"),
          permission: str = typer.Argument(..., help="within the project's terms")) -> None:
    """Grant one of your resources to every member of the project."""
    with handled():
        g = client().projects.grant(name, resource_type, resource, permission)
    console.print(f"granted {permission} on {g['resource']} to project {name} ({g['id']})")


@projects.command("report")
def report(name: str = PROJECT_ARG, as_json: bool = JSON_OPT) -> None:
    """Who contributed which datasets, which jobs ran, which models exist, who called which deployment."""
    with handled("project", name):
        r = client().projects.report(name)
    if as_json:
        show(r, as_json=True)
        return
    console.rule(f"[bold]{r['project']}[/bold]: {r['purpose']}")
    show(r["members"], ["org", "role", "state"], title="members")
    show(r["contributions"], ["organization", "resource_type", "resource", "permission", "state"],
         title="contributions")
    show(r["jobs"], ["id", "name", "kind", "state", "organization"], title="jobs")
    if isinstance(r.get("models"), list):
        show(r["models"], title="models")
    if isinstance(r.get("deployment_usage"), list):
        show(r["deployment_usage"], title="deployment usage")
