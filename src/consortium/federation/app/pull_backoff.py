"""A shorter first retry when a Flower process pulls an object that is not there yet.

Flower 1.42 sends a message's arrays as separate objects, and the process on the other side pulls
them by id (``flwr.supercore.inflatable.inflatable_utils.pull_objects``). An object asked for
before its sender finished pushing it is retried after 1 s, doubling to 10 s
(``PULL_INITIAL_BACKOFF``, ``PULL_BACKOFF_CAP`` in ``flwr.supercore.constant``; not settable). A
ClientApp forked the moment its SuperNode has the message asks before the SuperNode pulled the
arrays from the SuperLink, so it waited that 1 s in most rounds (measured: 1.16 s of a forked
ClientApp's 2.7 s), and the ServerApp's pull of the replies meets the same wait.

``shorten()`` sets those functions' defaults (their ``__kwdefaults__``, which every caller in
Flower uses) to a first retry after 50 ms, doubling to 0.5 s, with as many more tries as keep
Flower's own bound on the total wait. Home-made and specific to Flower 1.42's internals: if the
functions or their parameters are not there, it changes nothing and says so (returns False).
Called in every process of a run the hub starts: the SuperNode launcher
(``engine/supernode.py``), the warm SuperExec and its forked ClientApps (``engine/warm_exec.py``)
and the ServerApp (``app/server_app.py``).
"""

from __future__ import annotations

INITIAL_S = 0.05
CAP_S = 0.5


def shorten(initial_s: float = INITIAL_S, cap_s: float = CAP_S) -> bool:
    """Shorten the retry waits of Flower's object pulls in this process; whether it could."""
    try:
        from flwr.supercore.inflatable import inflatable_utils
    except ImportError:
        return False
    changed = False
    for name in ("pull_objects", "pull_and_inflate_object_from_tree"):
        defaults = getattr(getattr(inflatable_utils, name, None), "__kwdefaults__", None)
        if not defaults or not {"initial_backoff", "backoff_cap", "max_tries_per_object"} <= set(defaults):
            continue
        old_cap, old_tries = float(defaults["backoff_cap"]), defaults["max_tries_per_object"]
        defaults["initial_backoff"], defaults["backoff_cap"] = initial_s, cap_s
        if old_tries is not None:  # the same bound on the total wait: tries x cap
            defaults["max_tries_per_object"] = int(old_tries * max(1.0, old_cap / cap_s))
        changed = True
    return changed
