"""``consortium.procutil``: a child started with ``die_with_parent`` ends with its starter. Real
processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from support import wait_for


def test_a_child_started_with_die_with_parent_ends_when_its_starter_is_killed() -> None:
    """A node agent's SuperNode (in its own session) must not outlive an agent killed with SIGKILL."""
    starter = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "from consortium.procutil import die_with_parent\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True,"
        " preexec_fn=die_with_parent)\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert starter.stdout is not None
    child = int(starter.stdout.readline())
    try:
        assert Path(f"/proc/{child}").exists()
        starter.send_signal(signal.SIGKILL)
        starter.wait(10)

        def gone() -> bool:
            try:
                return Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"  # reaped by init soon
            except FileNotFoundError:
                return True

        wait_for(gone, 10, what="the orphaned child to end")
    finally:
        if Path(f"/proc/{child}").exists():
            os.kill(child, signal.SIGKILL)


def test_a_settled_collector_still_collects_cycles_made_later() -> None:
    """``settle_gc`` (a server, once started) freezes what is alive then; garbage cycles made after
    are still found, by the young generations' thresholds alone. In a child: the freeze is for good."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import gc, weakref
        from consortium.procutil import GC_THRESHOLDS, settle_gc
        settle_gc()
        assert gc.get_freeze_count() > 1000 and gc.get_threshold() == GC_THRESHOLDS
        class Node:
            pass
        refs = []
        for _ in range(100_000):  # garbage only a collection frees: it counts towards the young threshold
            a, b = Node(), Node()
            a.other, b.other = b, a
            refs.append(weakref.ref(a))
            del a, b
        print(sum(r() is not None for r in refs))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    left = int(out.stdout)
    assert left < 25_000, f"{left} of 100,000 garbage cycles were never collected"
