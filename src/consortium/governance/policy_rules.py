"""A dataset policy's rules and the one check of a job against them, free of the database.

The hub checks a job at submission (``consortium.jobs.policy_check``) and the owner's node checks
it again in its ClientApp before it trains (``consortium.federation.app.client_app``), both with
``violations`` on the same ``Terms``: so a hub that skipped its check still cannot make the site
train against the owner's rules. Nothing here imports SQL, so the ClientApp may import it.

>>> rules = Rules(max_epochs=5, dp_max_epsilon=2.0)
>>> terms = Terms(org="clinic", federated=True, epochs=10, rounds=3, dp_epsilon=None,
...               model_type="mlp", parameters=1_000, rows=400)
>>> [v.rule for v in violations(rules, terms)]
['dp_max_epsilon', 'max_epochs']
>>> [v.rule for v in impossible(Rules(max_epochs=0, min_rows=900), rows=569)]
['max_epochs', 'min_rows']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from consortium.errors import InvalidInput

ModelType = Literal["mlp", "cnn", "logistic"]
RULES = ("organizations", "projects", "purposes", "dp_max_epsilon", "max_rounds", "max_epochs", "model_types",
         "max_parameters", "min_rows", "manual_approval", "model_download")


class Rules(BaseModel):
    """What the owner allows; a rule left out (None) does not restrict. Bounds are checked by
    ``impossible`` rather than by the field types, so that a 422 names every rule at fault."""

    model_config = ConfigDict(extra="forbid")

    organizations: list[str] | None = Field(None, max_length=100)  # org names that may submit jobs on it
    projects: list[str] | None = Field(None, max_length=100)  # "org/name": jobs must run in one of them
    purposes: list[str] | None = Field(None, max_length=100)  # the job's project purpose must be one of them
    dp_max_epsilon: float | None = None  # federated jobs must use DP with at most this epsilon per job
    max_rounds: int | None = None
    max_epochs: int | None = None  # train.epochs (hub) or federated.local_epochs (per round, at a node)
    model_types: list[ModelType] | None = Field(None, max_length=3)
    max_parameters: int | None = None  # the recipe's largest model, counted as CONSORTIUM_MAX_MODEL_PARAMS
    min_rows: int | None = None  # rows each node update (or hub training run) is computed from, at least
    manual_approval: bool = False  # every federated job waits for an admin of the owner to approve it
    model_download: bool = False  # models trained on it may be downloaded (ONNX) by their owner

    def set_rules(self) -> dict[str, Any]:
        """Only the rules that restrict something (what a listing shows)."""
        return {k: v for k, v in self.model_dump().items() if v not in (None, False)}


@dataclass(frozen=True)
class Terms:
    """What a job asks of one dataset: who, where, how long, how private, which model, how many rows."""

    org: str  # the submitting organization's name
    federated: bool
    epochs: int  # per node update (federated local_epochs) or the hub's training run (train.epochs)
    rounds: int | None  # federated rounds; None for a hub job
    dp_epsilon: float | None  # the job's DP target; None without DP
    model_type: str
    parameters: int | None  # None when unknown (not counted)
    rows: int | None  # rows the update is computed from; None when unknown
    project: str | None = None  # "org/name" of the job's project
    purpose: str | None = None  # the project's purpose


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def violations(rules: Rules, t: Terms) -> list[Violation]:
    """Every rule ``t`` breaks, in ``RULES`` order (empty: the job may use the dataset)."""
    out: list[Violation] = []
    if rules.organizations is not None and t.org not in rules.organizations:
        out.append(Violation("organizations", f"organization {t.org} is not among those allowed "
                                              f"({', '.join(rules.organizations) or 'none'})"))
    if rules.projects is not None and t.project not in rules.projects:
        where = f"project {t.project}" if t.project else "no project"
        out.append(Violation("projects", f"the job runs in {where}; allowed: {', '.join(rules.projects) or 'none'}"))
    if rules.purposes is not None and (t.purpose is None or _norm(t.purpose) not in {_norm(x) for x in rules.purposes}):
        out.append(Violation("purposes", f"the job's purpose {t.purpose!r} is not among those allowed "
                                         f"({'; '.join(rules.purposes) or 'none'})"))
    if rules.dp_max_epsilon is not None:
        if not t.federated:
            out.append(Violation("dp_max_epsilon", "the dataset requires differential privacy, which only "
                                                   "federated jobs apply (federated.dp)"))
        elif t.dp_epsilon is None:
            out.append(Violation("dp_max_epsilon", f"the job uses no differential privacy; the dataset requires "
                                                   f"federated.dp with epsilon <= {rules.dp_max_epsilon:g}"))
        elif t.dp_epsilon > rules.dp_max_epsilon:
            out.append(Violation("dp_max_epsilon", f"the job's epsilon {t.dp_epsilon:g} is over the dataset's "
                                                   f"maximum of {rules.dp_max_epsilon:g} per job"))
    if rules.max_rounds is not None and t.rounds is not None and t.rounds > rules.max_rounds:
        out.append(Violation("max_rounds", f"{t.rounds} rounds, more than the {rules.max_rounds} allowed"))
    if rules.max_epochs is not None and t.epochs > rules.max_epochs:
        out.append(Violation("max_epochs", f"{t.epochs} epochs, more than the {rules.max_epochs} allowed"))
    if rules.model_types is not None and t.model_type not in rules.model_types:
        out.append(Violation("model_types", f"model type {t.model_type} is not among those allowed "
                                            f"({', '.join(rules.model_types) or 'none'})"))
    if rules.max_parameters is not None and t.parameters is not None and t.parameters > rules.max_parameters:
        out.append(Violation("max_parameters", f"the model has {t.parameters:,} parameters, more than the "
                                               f"{rules.max_parameters:,} allowed"))
    if rules.min_rows is not None and t.rows is not None and t.rows < rules.min_rows:
        out.append(Violation("min_rows", f"an update would be computed from {t.rows} rows, fewer than the "
                                         f"{rules.min_rows} required"))
    return out


NODE_RULES = ("dp_max_epsilon", "max_rounds", "max_epochs", "model_types", "max_parameters", "min_rows")
"""The rules a node checks on what it is asked to train; who submitted the job, in which project and
for which purpose are the hub's to check (the node sees only the run's recipe)."""


def node_violations(rules: Rules, t: Terms) -> list[Violation]:
    """``violations`` limited to ``NODE_RULES``."""
    return [v for v in violations(rules, t) if v.rule in NODE_RULES]


def impossible(rules: Rules, rows: int | None = None, kind: str | None = None) -> list[Violation]:
    """Rules no job could meet, or that contradict each other or the dataset (``rows``, ``kind``)."""
    out = []
    for name in ("max_rounds", "max_epochs", "max_parameters", "min_rows"):
        v = getattr(rules, name)
        if v is not None and v < 1:
            out.append(Violation(name, f"{name} must be at least 1, not {v}"))
    if rules.dp_max_epsilon is not None and not rules.dp_max_epsilon > 0:
        out.append(Violation("dp_max_epsilon", f"dp_max_epsilon must be above 0, not {rules.dp_max_epsilon:g}"))
    if rules.min_rows is not None and rows is not None and rules.min_rows > rows:
        out.append(Violation("min_rows", f"min_rows {rules.min_rows} is more than the dataset's {rows} rows"))
    for name in ("organizations", "projects", "purposes", "model_types"):
        if getattr(rules, name) == []:
            out.append(Violation(name, f"{name} is an empty list, which allows no job at all "
                                       "(leave it out to allow any; revoke the grants to allow none)"))
    if rules.model_types is not None and kind == "tabular" and set(rules.model_types) <= {"cnn"} and rules.model_types:
        out.append(Violation("model_types", "the dataset is tabular, and a cnn needs images"))
    return out


def check_possible(rules: Rules, rows: int | None = None, kind: str | None = None) -> None:
    """``InvalidInput`` (422) naming every impossible or contradictory rule."""
    bad = impossible(rules, rows, kind)
    if bad:
        raise InvalidInput(f"invalid policy: {'; '.join(f'{v.rule}: {v.message}' for v in bad)}",
                           hint="fix or leave out the rules named", details=[{"rule": v.rule, "message": v.message}
                                                                              for v in bad])
