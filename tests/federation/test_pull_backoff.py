"""``app/pull_backoff.py``: Flower's object pulls retry after 50 ms instead of 1 s, through
Flower's own ``pull_objects``, and the bound on the total wait stays Flower's."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flwr.supercore import constant
from flwr.supercore.inflatable import inflatable_utils as iu

from consortium.federation.app import pull_backoff

NAMES = ("pull_objects", "pull_and_inflate_object_from_tree")


@pytest.fixture
def flower_defaults() -> Iterator[None]:
    """Flower's own defaults for the test (a ServerApp run in this process may have shortened them)."""
    saved = {n: dict(getattr(iu, n).__kwdefaults__) for n in NAMES}
    for n in NAMES:
        getattr(iu, n).__kwdefaults__.update(initial_backoff=constant.PULL_INITIAL_BACKOFF,
                                             backoff_cap=constant.PULL_BACKOFF_CAP,
                                             max_tries_per_object=constant.PULL_MAX_TRIES_PER_OBJECT)
    try:
        yield
    finally:
        for n, d in saved.items():
            getattr(iu, n).__kwdefaults__.update(d)


@pytest.mark.usefixtures("flower_defaults")
def test_an_object_pushed_late_is_pulled_within_milliseconds() -> None:
    before = dict(iu.pull_objects.__kwdefaults__)
    assert before["initial_backoff"] == 1  # Flower 1.42's own first retry
    assert pull_backoff.shorten()
    for n in NAMES:
        d = getattr(iu, n).__kwdefaults__
        assert (d["initial_backoff"], d["backoff_cap"]) == (pull_backoff.INITIAL_S, pull_backoff.CAP_S)
        # tries x cap: the same bound on the total wait as Flower's 500 x 10 s
        assert d["max_tries_per_object"] * d["backoff_cap"] == before["max_tries_per_object"] * before["backoff_cap"]
    asked: list[float] = []

    def pull(object_id: str) -> bytes:
        asked.append(time.monotonic())
        if len(asked) < 3:  # not pushed yet: the first two asks find nothing
            raise iu.ObjectUnavailableError(object_id)
        return b"arrays"

    start = time.monotonic()
    assert iu.pull_objects(["obj"], pull) == {"obj": b"arrays"}
    assert time.monotonic() - start < 0.6, asked  # Flower's defaults: 1 s + 2 s


def test_nothing_changes_where_flower_lacks_the_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    def pull_objects(object_ids: list[str], *, max_time: float = 1.0) -> None:  # another Flower's signature
        return None

    monkeypatch.setattr(iu, "pull_objects", pull_objects)
    monkeypatch.setattr(iu, "pull_and_inflate_object_from_tree", pull_objects)
    assert pull_backoff.shorten() is False
    assert pull_objects.__kwdefaults__ == {"max_time": 1.0}
