"""Multi-objective successive halving for Ray Tune.

Plain ASHA ranks trials at each rung by validation logloss alone, so it stops the cheap,
slightly worse models, which are exactly the ones the quality-vs-FLOPs Pareto front
needs. Here a trial reaching rung k continues unless at least ceil(n / eta) of the n
trials recorded at that rung dominate it on (logloss, FLOPs). A trial on the rung's
front is never stopped. With ``group_by_family`` (a ladder rung, where every family needs its
own best trial for its law) a trial is compared with its own family's trials only. A trial is
judged on its best epoch so far (what the trainable reports: the weights early stopping would
restore), and a result answered from memory (full fidelity) is no peer of trials mid-training.
The decision rule is plain Python; the Tune class only feeds it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler


class DominationRungs:
    """Rung records and the continue/stop rule, independent of Ray."""

    def __init__(self, milestones: tuple[int, ...], eta: int = 3) -> None:
        self.milestones = tuple(sorted(set(m for m in milestones if m > 0)))
        self.eta = eta
        self.recorded: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
        self.passed: dict[str, set[int]] = defaultdict(set)

    def decide(self, trial_id: str, progress: float, objectives: tuple[float, float], group: str = "") -> bool:
        """True to continue. Each rung is judged once per trial, when it is first reached, against the
        trials of its ``group`` only."""
        keep = True
        for rung in self.milestones:
            if progress < rung or rung in self.passed[trial_id]:
                continue
            self.passed[trial_id].add(rung)
            if any(math.isnan(v) for v in objectives):
                return False
            peers = self.recorded[group, rung]
            peers.append(objectives)
            dominators = sum(
                all(p <= o for p, o in zip(peer, objectives, strict=True)) and peer != objectives for peer in peers
            )
            keep = keep and dominators < math.ceil(len(peers) / self.eta)
        return keep


class ParetoASHA(FIFOScheduler):
    def __init__(
        self,
        time_attr: str,
        objectives: tuple[str, str],
        milestones: tuple[int, ...],
        eta: int = 3,
        group_by_family: bool = False,
    ):
        super().__init__()
        self.group_by_family = group_by_family
        self.time_attr = time_attr
        self.objectives = objectives
        self.rungs = DominationRungs(milestones, eta)
        self.stopped = 0

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.time_attr not in result or any(o not in result for o in self.objectives):
            return TrialScheduler.CONTINUE
        if result.get("cached"):  # a full-fidelity result from memory: no peer of trials mid-training
            return TrialScheduler.CONTINUE
        values = tuple(float(result[o]) for o in self.objectives)
        group = (trial.config.get("model") or {}).get("family", "") if self.group_by_family else ""
        if self.rungs.decide(trial.trial_id, result[self.time_attr], values, group):  # type: ignore[arg-type]
            return TrialScheduler.CONTINUE
        self.stopped += 1
        return TrialScheduler.STOP

    def debug_string(self) -> str:
        return f"ParetoASHA: {self.stopped} stopped at rungs {self.rungs.milestones}"
