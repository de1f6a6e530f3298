"""Every resource name is checked by one rule type (``governance.names.NameRule``) with
``re.fullmatch``: ``re.match`` with a ``$`` anchor took a name ending in a newline."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consortium.data.catalog import check_name as check_dataset_name
from consortium.errors import InvalidInput
from consortium.governance.identity import check_name
from consortium.jobs.federated_nodes import NODE_NAME
from consortium.registry.models import check_alias, check_model_name
from consortium.serving.hub.deployments import check_deployment_name

CHECKS: dict[str, Callable[[str], str]] = {
    "organization": check_name, "dataset": check_dataset_name, "model": check_model_name,
    "alias": check_alias, "deployment": check_deployment_name, "node": NODE_NAME.check,
}


@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_a_name_with_a_trailing_newline_is_refused(kind: str) -> None:
    check = CHECKS[kind]
    assert check("site-one") == "site-one"
    for bad in ("site-one\n", "site-one\r\n", "\nsite-one", "site one", ""):
        with pytest.raises(InvalidInput) as e:
            check(bad)
        assert repr(bad) in e.value.message and e.value.hint


def test_the_error_names_what_was_checked_and_reserved_names_stay_reserved() -> None:
    with pytest.raises(InvalidInput, match="project name 'x' is not valid"):
        check_name("x", "project name")
    with pytest.raises(InvalidInput, match="alias 'latest'"):
        check_alias("latest")

