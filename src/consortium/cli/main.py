"""The ``consortium`` command. Every command except ``up``, ``serve`` and ``worker`` goes through the SDK."""

from __future__ import annotations

import typer

from consortium.cli import governance, hub, jobs, projects
from consortium.cli.common import CliGroup

app = typer.Typer(
    name="consortium", cls=CliGroup,
    help="Consortium: build AI together across organizations without handing over data.\n\n"
         "Start with `consortium up`, then `consortium login --token TOKEN` with a demo token.\n\n"
         "Environment: CONSORTIUM_URL and CONSORTIUM_TOKEN override the saved login; "
         "CONSORTIUM_CONFIG is the file `login` writes (default ~/.config/consortium/cli.json, 0600); "
         "CONSORTIUM_ORG picks the organization. Tables are printed for people; --json prints JSON. "
         "An error is one line and a hint (CONSORTIUM_DEBUG=1 shows an unexpected error's traceback).",
    no_args_is_help=True, pretty_exceptions_enable=False)

app.command("up")(hub.up)
app.command("serve")(hub.serve)
app.command("login")(governance.login)
app.command("whoami")(governance.whoami)
app.add_typer(governance.orgs, name="orgs")
app.add_typer(governance.members, name="members")
app.add_typer(governance.tokens, name="tokens")
app.add_typer(governance.grants, name="grants")
app.add_typer(governance.audit, name="audit")
app.add_typer(governance.keys, name="keys")
app.add_typer(jobs.jobs, name="jobs")
app.add_typer(projects.projects, name="projects")
app.command("worker")(hub.worker)
__import__("consortium.cli.models", fromlist=["install"]).install(app)  # models, deploy, deployments
app.add_typer(__import__("consortium.cli.datasets", fromlist=["app"]).app, name="datasets")
__import__("consortium.cli.policies", fromlist=["install"]).install(  # datasets policy, consents (issue 19)
    app, __import__("consortium.cli.datasets", fromlist=["app"]).app)
__import__("consortium.cli.monitor", fromlist=["install"]).install(app)  # monitor, feedback, monitoring
app.command("node")(__import__("consortium.cli.node", fromlist=["node"]).node)
app.add_typer(__import__("consortium.cli.node", fromlist=["nodes"]).nodes, name="nodes")
__import__("consortium.cli.protection", fromlist=["install"]).install(app, governance.audit)  # records, audit export


def main() -> None:
    app()


if __name__ == "__main__":
    main()
