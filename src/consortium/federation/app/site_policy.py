"""The site's own check of its data owner's policy, in the ClientApp, before each answer.

``consortium node`` reads the dataset's policy from the hub with the site's own credential when it
starts a run's SuperNode, takes the stricter of it and the site's own copy
(``federation.node.local_policy``, which the hub never writes), and writes those rules to a file
named in ``node_config`` (``P.POLICY``).
Before it answers a ``query`` or trains a round, the ClientApp checks the recipe it was actually
sent (and the round number, the model it built and its own row count) against those rules with
``policy_rules.node_violations``: a hub that skipped its submission check, or sends more rounds
than the recipe says, still cannot make the site train against the policy. A refusal raises (the
run fails at the server, naming the rules) and leaves a ``.refused.json`` beside the rules file,
which the agent reports to the hub (audited) and which stops its SuperNode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from consortium.errors import PermissionDenied
from consortium.federation.app import protocol as P
from consortium.governance.policy_rules import Rules, Terms, node_violations


def refusal_path(policy_file: str | Path) -> Path:
    """Where a refusal of the run is written, beside its rules file."""
    p = Path(policy_file)
    return p.with_name(p.stem + ".refused.json")


def enforce(node_config: Any, recipe: Any, rows: int, *, server_round: int | None = None,
            parameters: int | None = None) -> None:
    """``PermissionDenied`` naming every rule of the site's policy this step would break."""
    path = str(node_config.get(P.POLICY) or "")
    if not path:
        return
    saved = json.loads(Path(path).read_text())
    site = set(saved.get("site_rules") or [])  # the rules the site's own copy sets (``local_policy``)
    rules = Rules.model_validate({k: v for k, v in saved.items() if k not in ("dataset", "site_rules")})
    fed = recipe.federated
    rounds = max(fed.rounds if fed else 1, server_round or 0)
    terms = Terms(org="", federated=fed is not None, epochs=fed.local_epochs if fed else recipe.train.epochs,
                  rounds=rounds, dp_epsilon=fed.dp.epsilon if fed is not None and fed.dp is not None else None,
                  model_type=recipe.model.type, parameters=parameters, rows=rows)
    bad = node_violations(rules, terms)
    if not bad:
        return
    from consortium.fileutil import write_private

    message = "; ".join(f"{v.rule}: {v.message}" + (" (the site's own policy)" if v.rule in site else "")
                        for v in bad)
    write_private(refusal_path(path), json.dumps({"rules": [v.rule for v in bad], "message": message}).encode())
    raise PermissionDenied(f"this site's policy refuses the run: {message}",
                           hint="the data owner's rules: `consortium datasets policy show`")
