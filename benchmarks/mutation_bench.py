"""Mutation score of the planner's decision code (mutmut 3), as JSON and a Markdown table.

    .venv/bin/python benchmarks/mutation_bench.py [--out bench-out/mutation] [--max-children 2]

What is mutated: the functions that decide (DECISION_FUNCTIONS below): Pareto sets, the
successive-halving rule and the scheduler that applies it, what is told to Optuna, the choice at
the target (direct and on the proxy ladder), budget solving, the scaling fits. Which tests may kill
a mutant: the fast tests of those modules ([tool.mutmut] in pyproject.toml), so a run takes minutes.

mutmut names modules by file path, and package-dir maps planner/ to ``unimixer_plan``, so the script
stages the package as ``src/unimixer_plan/`` (from pyproject's own mapping) beside tests/ and
pyproject.toml in the output folder and runs ``mutmut run`` there; mutmut puts its mutated copy
(mutants/src) first on sys.path, ahead of the editable install. Not run in CI (minutes, and the
score is a report, not a gate).
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Mangled mutmut names: module.x_function, module.xǁClassǁmethod.
DECISION_FUNCTIONS = {
    "Pareto sets": ["unimixer_plan.search.pareto.x_*"],
    "successive-halving rule and scheduler": ["unimixer_plan.search.pareto_asha.*"],
    "what is told to Optuna": ["unimixer_plan.search.driver.xǁPlanSearchǁon_trial_complete*"],
    "choice at the target": [
        f"unimixer_plan.plan.x_{name}__mutmut_*"
        for name in (
            "full_fidelity_rows",
            "pareto_rows",
            "finish_plan",
            "finish_ladder",
            "choose_family",
            "target_row",
            "plan_rungs",
        )
    ],
    "budget solving": [
        f"unimixer_plan.search_spaces.cost_aware.x_{name}__mutmut_*"
        for name in ("solve_width", "fits", "width_multiple", "narrowest_config", "repair", "family_knobs")
    ],
    "scaling fits": ["unimixer_plan.scaling.fits.x*"],
    "scaling posterior": ["unimixer_plan.scaling.posterior.x*"],
}
# mutmut's exit-code meanings (mutmut.stats.status_by_exit_code), kept here so the report reads the
# meta files even if mutmut's internals move.
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout"}
STATUS.update({24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "caught by type check"})


def stage(out: Path) -> Path:
    """A copy of the package in src/unimixer_plan/ (pyproject's package-dir mapping), tests/ and pyproject."""
    stage_dir = out / "stage"
    shutil.rmtree(stage_dir, ignore_errors=True)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = project["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(mapping.items(), key=lambda item: item[0].count(".")):
        target = stage_dir / "src" / Path(*package.split("."))
        shutil.copytree(
            ROOT / folder, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copytree(ROOT / "tests", stage_dir / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", stage_dir / "pyproject.toml")
    return stage_dir


def read_results(stage_dir: Path) -> dict[str, str]:
    """mutant name -> status, from mutmut's per-file meta files."""
    results = {}
    for meta in (stage_dir / "mutants").rglob("*.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            results[name] = STATUS.get(code, "not checked" if code is None else "suspicious")
    return results


def in_group(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def summarise(results: dict[str, str]) -> dict:
    groups = {}
    for group, patterns in DECISION_FUNCTIONS.items():
        statuses = [s for n, s in results.items() if in_group(n, patterns)]
        counts = {s: statuses.count(s) for s in sorted(set(statuses))}
        judged = len(statuses) - counts.get("skipped", 0) - counts.get("not checked", 0)
        groups[group] = {
            "mutants": len(statuses),
            **counts,
            "score": round(counts.get("killed", 0) / judged, 4) if judged else None,
        }
    decided = {n: s for n, s in results.items() if any(in_group(n, p) for p in DECISION_FUNCTIONS.values())}
    killed = sum(s == "killed" for s in decided.values())
    judged = sum(s not in ("skipped", "not checked") for s in decided.values())
    return {
        "score": round(killed / judged, 4) if judged else None,
        "mutants": len(decided),
        "killed": killed,
        "judged": judged,
        "groups": groups,
        "surviving": sorted(n for n, s in decided.items() if s in ("survived", "no tests", "timeout", "suspicious")),
    }


# One process for every diff (a `mutmut show` per mutant costs a second of start-up each).
DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
out = {}
for name in json.load(sys.stdin):
    out[name] = get_diff_for_mutant(name, path=find_mutant(name).path)
print(json.dumps(out))
"""


def diffs_of(stage_dir: Path, names: list[str]) -> dict[str, str]:
    """mutant name -> its changed lines, shortened, from mutmut's own diff."""
    shown = subprocess.run(
        [sys.executable, "-c", DIFFS], cwd=stage_dir, input=json.dumps(names), capture_output=True, text=True
    )
    if shown.returncode != 0:
        return {}
    short = {}
    for name, diff in json.loads(shown.stdout.strip().splitlines()[-1]).items():
        changed = [line for line in diff.splitlines() if line.startswith(("-", "+")) and line[:3] not in ("---", "+++")]
        short[name] = " / ".join(" ".join(line.split()) for line in changed)[:160]
    return short


def markdown(report: dict) -> str:
    rows = [
        "| decision code | mutants | killed | survived | no tests | timeout | score |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for group, g in report["groups"].items():
        score = "-" if g["score"] is None else f"{g['score']:.1%}"
        cells = [g["mutants"], g.get("killed", 0), g.get("survived", 0), g.get("no tests", 0), g.get("timeout", 0)]
        rows.append(f"| {group} | " + " | ".join(str(c) for c in cells) + f" | {score} |")
    rows.append(
        f"| **all** | {report['mutants']} | {report['killed']} | | | | **{report['score']:.1%}** |"
        if report["score"] is not None
        else "| **all** | 0 | | | | | - |"
    )
    text = [
        f"Mutation score of the decision code, {report['date']}, {report['machine']}, mutmut {report['mutmut']}, "
        f"{report['wall_time_s']:.0f} s:",
        "",
        *rows,
        "",
        f"Surviving mutants ({len(report['surviving'])}):",
        "",
    ]
    text += [f"- `{name}`: {report['diffs'].get(name, '')}" for name in report["surviving"]]
    return "\n".join(text) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "mutation")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stage_dir = stage(args.out)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    patterns = [p if p.endswith("*") else p + "*" for ps in DECISION_FUNCTIONS.values() for p in ps]
    start = time.monotonic()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run(
        [mutmut, "run", "--max-children", str(args.max_children), *patterns],
        cwd=stage_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - start
    (args.out / "mutmut-run.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        sys.exit(f"mutmut run failed (exit {run.returncode}); see {args.out / 'mutmut-run.log'}")
    report = summarise(read_results(stage_dir))
    report["diffs"] = diffs_of(stage_dir, report["surviving"])
    report |= {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "mutmut": subprocess.run([mutmut, "--version"], capture_output=True, text=True).stdout.split()[-1],
        "wall_time_s": wall,
        "tests": tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"][
            "pytest_add_cli_args_test_selection"
        ],
    }
    (args.out / "mutation.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (args.out / "mutation.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
