"""The searcher of a rung: Optuna's multi-objective TPE through Ray Tune, told what really happened.

Objectives: validation logloss and FLOPs, both minimised; budgets are Optuna constraints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from typing import Any

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

OBJECTIVES = ["val_logloss", "flops"]


class PlanSearch(OptunaSearch):
    """OptunaSearch that tells Optuna what really happened to a trial.

    Stopped by successive halving -> PRUNED; failed -> FAIL; not trained because a measured
    budget (latency) is broken -> COMPLETE with the base-rate logloss and a violated
    constraint, so that constrained TPE learns to avoid that region.

    A proposal that resolves to an architecture this search already trained to completion
    does not spend a trial: Optuna is told the known result and asked again (TPE repeats
    itself in small discrete spaces, and the cost-aware width solve maps many proposals to
    one architecture), within ``repeat_allowance``.
    """

    def __init__(
        self,
        *args: Any,
        latency_budget: float | None,
        capacity: Callable[[], int] | None = None,
        model_after: int = 0,
        balance_families: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.latency_budget = latency_budget
        self.capacity = capacity  # trials that may run at once now (None: as many as Tune starts)
        self.model_after = model_after  # the sampler's start-up: trials that must report before it proposes
        self.balance_families = balance_families  # on a ladder rung: every family of its study
        self.running: set[str] = set()
        self.trained: dict[str, dict[str, Any]] = {}  # model config (JSON) -> its final result
        self.duplicates = 0

    def suggest(self, trial_id: str) -> dict | None:
        """A new trial's config, or None while the cluster is full (Tune asks again later): a proposal
        waiting for resources would be made without the results that finish meanwhile."""
        if self.capacity is not None and len(self.running) >= self.capacity():
            return None
        if self.running and self.waiting_for_start_up():
            return None
        config = self._propose(trial_id)
        if config is not None:
            self.running.add(trial_id)
        return config

    def waiting_for_start_up(self) -> bool:
        """True while the next proposal would be the sampler's own before ``model_after`` trials have
        reported. TPE proposes at random until its start-up trials have finished, and a cluster with a
        slot for every trial would propose a whole rung at once: blind. The enqueued warm starts go
        first; the rest wait for their results (and never wait on nothing: only while a trial runs)."""
        if self.model_after <= 0:
            return False
        trials = self._ot_study.get_trials(deepcopy=False)
        if any(t.state is TrialState.WAITING for t in trials):  # an enqueued warm start is next: no model needed
            return False
        finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) for t in trials)
        return finished < self.model_after

    def next_family(self) -> str | None:
        """With ``balance_families`` (a ladder rung, where every family needs its own scaling point), the
        family the sampler's next proposal is for: the one with the fewest trials in the study, so each
        family gets an equal share of the rung and TPE chooses its knobs and cost level. None when an
        enqueued warm start is next, or without balancing. On a ladder benchmark, letting TPE choose
        the family too left the families it did not favour with one trial per rung."""
        if not self.balance_families:
            return None
        trials = self._ot_study.get_trials(deepcopy=False)
        if any(t.state is TrialState.WAITING for t in trials):
            return None
        counts = {family: 0 for family in self.balance_families}
        for t in trials:
            if t.params.get("family") in counts:
                counts[t.params["family"]] += 1
        return min(sorted(counts), key=lambda family: counts[family])

    def _propose(self, trial_id: str) -> dict | None:
        for _ in range(MAX_DUPLICATE_DRAWS):
            family = self.next_family()
            if family is not None:
                self._ot_study.enqueue_trial({"family": family}, skip_if_exists=False)
            config = super().suggest(trial_id)
            known = self.trained.get(model_key(config)) if config else None
            if known is None or self.duplicates >= self.repeat_allowance():
                return config
            ot_trial = self._ot_trials.pop(trial_id)
            self._tell(ot_trial, known, error=False)
            self.duplicates += 1
        return config  # still a repeat: let it run; the trainable answers it from its cache

    def repeat_allowance(self) -> int:
        """How many repeats may be answered from memory and asked again so far: MAX_DUPLICATE_DRAWS, plus
        one per trial suggested (the study stays within twice the trials). Once TPE has converged it
        proposes known architectures again and again, and every ask reads the whole study: uncapped, a
        1,000-trial search spent seconds per trial asking (overhead_bench.py). Past the cap a repeat runs
        as a trial, answered from the result cache."""
        return MAX_DUPLICATE_DRAWS + len(self._ot_trials)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.running.discard(trial_id)
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        result = result or {}
        self._tell(self._ot_trials[trial_id], result, error)
        if not error and result.get("status") == "ok" and result.get("model_key"):
            self.trained[result["model_key"]] = result
        self._completed_trials.add(trial_id)

    def _tell(self, ot_trial: Any, result: dict[str, Any], error: bool) -> None:
        latency = result.get("latency_ms")
        status = result.get("status")
        try:
            if self.latency_budget is not None and latency is not None and math.isfinite(latency):
                ot_trial.set_constraint("latency", latency - self.latency_budget)
            else:
                ot_trial.set_constraint("latency", -1.0)
            if (
                error
                or status in (None, "failed")
                or (status == "infeasible" and not math.isfinite(result.get("flops", math.nan)))
            ):
                self._ot_study.tell(ot_trial, state=TrialState.FAIL)
            elif status == "infeasible":
                self._ot_study.tell(ot_trial, [result["val_logloss"], result["flops"]])
            elif status == "running":  # its last report was an epoch's: the scheduler stopped it
                self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
            else:
                self._ot_study.tell(ot_trial, [result[m] for m in OBJECTIVES])
        except (ValueError, RuntimeError) as err:  # a trial Optuna already finished (resume edge cases)
            logging.getLogger(__name__).debug("optuna tell failed: %s", err)


MAX_DUPLICATE_DRAWS = 20


def model_key(config: dict[str, Any]) -> str | None:
    model = config.get("model")
    return hashlib.sha1(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16] if model else None
