"""Create the three organizations of the multi-site example in the hub's database, each with an
owner and an API token; prints ``org token`` per line. Run once, in the hub's namespace, with the
hub's settings (CONSORTIUM_HOME, ...) before `consortium serve`; a second run keeps what exists.
It reuses the demo's organization step (consortium.demo.orgs), which is idempotent."""

from __future__ import annotations

from consortium.config import Settings
from consortium.demo.orgs import seed_orgs
from consortium.governance.audit import EventDraft
from consortium.services import Services
from consortium.store.db import transaction
from consortium.store.home import make_private, private_database


def main() -> None:
    settings = Settings()
    make_private(settings.home)
    private_database(settings.database_url)
    svc = Services.start(settings)
    try:
        events: list[EventDraft] = []
        with transaction(svc.session_factory) as s:
            orgs = seed_orgs(s, svc.keys, {}, events)
            svc.audit_in(s, events)
        for o in orgs:
            print(o["name"], o["token"])
    finally:
        svc.close()


if __name__ == "__main__":
    main()
