"""The site's own copy of its datasets' policies, which the hub never writes.

The hub keeps each dataset's policy (``governance.policies``) and sends it to the owner's node
when the node starts a run (``NodeAgent.policy_file``). A hub that was compromised, or that a
bug made skip or relax the rules, could then send weaker rules. So the data owner also keeps the
rules at the site: ``consortium nodes add-data DIR NAME FILE --policy rules.json`` or
``consortium nodes policy DIR NAME --file rules.json`` writes them to
``<data dir>/.node/local-policies/<name>.json`` (0600). Nothing the agent receives from the hub is
written there. Before a run, the agent hands its ClientApp the stricter of the two
(``stricter``): the lower of each maximum, the higher minimum, the intersection of each allowed
list, manual approval if either asks, model download only if both allow; so what the hub sends
can only tighten the site's own rules, never loosen them.

>>> a = Rules(max_epochs=2, model_types=["mlp", "logistic"], dp_max_epsilon=4.0)
>>> b = Rules(max_epochs=5, max_rounds=3, model_types=["logistic", "cnn"], model_download=True)
>>> stricter(a, b).set_rules()
{'dp_max_epsilon': 4.0, 'max_rounds': 3, 'max_epochs': 2, 'model_types': ['logistic']}
>>> stricter(None, None) is None
True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from consortium.errors import InvalidInput
from consortium.governance.policy_rules import Rules, check_possible

DIR = ".node/local-policies"
MAXIMA = ("dp_max_epsilon", "max_rounds", "max_epochs", "max_parameters")
LISTS = ("organizations", "projects", "purposes", "model_types")


def path(data_dir: str | os.PathLike[str], name: str) -> Path:
    """Where the site keeps the rules of its dataset ``name``."""
    from consortium.federation.app.datasets import _dataset_dir

    return Path(data_dir) / DIR / f"{_dataset_dir(data_dir, name).name}.json"


def parse(raw: dict[str, Any], rows: int | None = None, kind: str | None = None) -> Rules:
    """Rules from a policy file's object (the same fields as ``PUT .../policy``); 422 naming the
    unknown field or the impossible rules."""
    from pydantic import ValidationError

    try:
        rules = Rules.model_validate(raw)
    except ValidationError as e:
        raise InvalidInput(f"invalid policy file: {'; '.join(str(x['loc'][0]) + ': ' + x['msg'] for x in e.errors())}",
                           hint="use the fields of `consortium datasets policy show --json`'s rules") from None
    check_possible(rules, rows, kind)
    return rules


def save(data_dir: str | os.PathLike[str], name: str, raw: dict[str, Any]) -> Path:
    """Check and write the site's rules for its dataset ``name`` (which must be saved there)."""
    from consortium.federation.app.datasets import load_dataset
    from consortium.fileutil import write_private

    data = load_dataset(data_dir, name)  # NotFound naming what is there
    rules = parse(raw, int(data.n_rows), data.kind)
    out = path(data_dir, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_private(out, json.dumps(rules.set_rules(), sort_keys=True).encode())
    return out


def load(data_dir: str | os.PathLike[str], name: str) -> Rules | None:
    """The site's rules for ``name``; None when it keeps none. A file that no longer parses is
    an error (the run is refused), never read as "no rules"."""
    p = path(data_dir, name)
    if not p.exists():
        return None
    try:
        return Rules.model_validate(json.loads(p.read_text()))
    except ValueError as e:
        raise InvalidInput(f"the site's policy file {p} is not valid: {e}",
                           hint="write it again with `consortium nodes policy DIR NAME --file rules.json`") from e


def clear(data_dir: str | os.PathLike[str], name: str) -> bool:
    """Remove the site's rules for ``name``; whether there were any."""
    p = path(data_dir, name)
    if not p.exists():
        return False
    p.unlink()
    return True


def stricter(a: Rules | None, b: Rules | None) -> Rules | None:
    """The rules that allow only what both ``a`` and ``b`` allow (None: neither restricts)."""
    if a is None or b is None:
        return a or b
    out: dict[str, Any] = {}
    for k in MAXIMA:
        vals = [v for v in (getattr(a, k), getattr(b, k)) if v is not None]
        out[k] = min(vals) if vals else None
    mins = [v for v in (a.min_rows, b.min_rows) if v is not None]
    out["min_rows"] = max(mins) if mins else None
    for k in LISTS:
        x, y = getattr(a, k), getattr(b, k)
        out[k] = y if x is None else x if y is None else [v for v in x if v in y]
    out["manual_approval"] = a.manual_approval or b.manual_approval
    out["model_download"] = a.model_download and b.model_download
    return Rules.model_validate(out)
