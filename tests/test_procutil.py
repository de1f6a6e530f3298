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
