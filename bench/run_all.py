"""Run every benchmark in turn and assemble bench/RESULTS.md from their sections.

Each ``bench/bench_*.py`` measures its own baseline in the same run and writes
``bench/results/<name>.md``; this script runs them one after another (never side by side: the
machine has two cores) and concatenates the sections. ``--only foundation,serving`` runs a subset;
``--assemble`` only rebuilds RESULTS.md from the existing sections.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["foundation", "audit", "control_plane", "scale", "replicas", "upload",
         "training", "tuning_methods", "serving_core", "serving", "monitoring", "federation", "ray",
         "ray_training"]
ARGS = {"federation": ["--deployment"],  # also time the engine on real Flower processes
        "tuning_methods": ["--children", "12", "--seeds", "2", "--pbt-seeds", "1"]}  # 30 x 5: hours on 2 cores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="", help="comma-separated benchmark names")
    ap.add_argument("--assemble", action="store_true", help="only rebuild RESULTS.md")
    args = ap.parse_args()
    names = [n for n in ORDER if (HERE / f"bench_{n}.py").exists()]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    failed = []
    if not args.assemble:
        env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
        for n in names:
            print(f"== bench_{n}.py", flush=True)
            t0 = time.monotonic()
            r = subprocess.run([sys.executable, str(HERE / f"bench_{n}.py"), *ARGS.get(n, [])], env=env,
                               cwd=HERE.parent)
            print(f"== bench_{n}.py finished in {time.monotonic() - t0:.0f} s (exit {r.returncode})", flush=True)
            if r.returncode:
                failed.append(n)
    sections = [(HERE / "results" / f"{n}.md") for n in ORDER]
    body = [p.read_text().strip() for p in sections if p.exists()]
    head = ["# Benchmark results", "",
            f"Written by `make bench` ({datetime.date.today().isoformat()}) on {platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}. Every figure is compared with a "
            "baseline measured in the same run; ratios are platform / baseline unless the section says "
            "otherwise. Sections are in `bench/results/`.", ""]
    (HERE / "RESULTS.md").write_text("\n".join(head) + "\n" + "\n\n".join(body) + "\n")
    print(f"wrote {HERE / 'RESULTS.md'}")
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
