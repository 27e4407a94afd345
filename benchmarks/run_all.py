"""Run the page's benchmarks, one after another (they time things: nothing else should run), then
render ``benchmarks/index.html`` and the README's tables (``render.py``).

    .venv/bin/python benchmarks/run_all.py [--only search throughput] [--quick]

``--quick`` runs each at a smaller size (fewer seeds and trials) to check the pipeline, into
bench-out/quick/ with its own page there; the README is left alone. The search benchmark replays
``results/search_grid.json``; record it again with ``search_grid.py`` (about 20 minutes on 2 cores)
after the trainer or the models change.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
# name -> (script, full-size arguments, quick arguments; None: skipped by --quick)
BENCHMARKS = {
    "search": ("search_bench.py", [], ["--seeds", "2", "--trials", "12"]),
    "throughput": ("throughput_bench.py", [], ["--steps", "3"]),
    "overhead": ("overhead_bench.py", ["--trials", "1000"], ["--trials", "100"]),
    "families": ("families_bench.py", [], ["--seeds", "1", "--families", "rankmixer", "unimixing_lite"]),
    "cost": ("cost_bench.py", [], ["--configs", "5"]),
    "ladder_search": ("ladder_search_bench.py", [], ["--seeds", "1"]),  # about 25 minutes
    "plan": ("ladder_bench.py", [], []),  # the default plan, synthetic and real: about 25 minutes
    "prediction": ("prediction_bench.py", [], None),  # 6 plans and 6 trainings: about an hour; not --quick
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results", type=Path, default=None, help="default: bench-out/ (--quick: bench-out/quick/)")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent / "bench-out"
    args.results = args.results or (root / "quick" if args.quick else root)
    for name in args.only:
        script, full, quick = BENCHMARKS[name]
        if args.quick and quick is None:
            continue
        command = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        command += ["--out", str(args.results / name)]
        start = time.perf_counter()
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        subprocess.run(command, check=True)
        print(f"== {name}: {time.perf_counter() - start:.0f} s", flush=True)
    render = [sys.executable, str(HERE / "render.py"), "--results", str(args.results)]
    if args.quick:  # a pipeline check: its page goes beside its results, the README keeps real numbers
        render += ["--readme", "-", "--page", str(args.results / "index.html")]
    subprocess.run(render, check=True)


if __name__ == "__main__":
    main()
