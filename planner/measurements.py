"""The trials a ladder runs after its searches: each rung's best shapes trained again, to measure what
the searches alone cannot (``scaling.design``).

- data: every family's best shape of every rung on a quarter of the rung's rows, a point off the
  compute-data diagonal at fixed compute (the law's data axis);
- seed: the same shapes on the same rows with SEED_REPLICATES more seeds, on every rung but the top
  (whose trials cost the most), the proxies' noise that the law's likelihood is told.

They depend only on trials.csv, so a resumed plan recomputes them and runs what is missing.
"""

from __future__ import annotations

from typing import Any

from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.run.trial_record import TrialRecord, TrialRole
from unimixer_plan.scaling.design import SEED_REPLICATES, data_point_samples
from unimixer_plan.scaling.ladder import best_per_rung
from unimixer_plan.search.rungs import FixedTrial, Rung

MEASUREMENT_STUDY = "measurements"


def measurement_trials(
    rows: list[TrialRecord], plan: PlanConfig, families: list[str], top_rung: int, schema: dict[str, Any]
) -> list[FixedTrial]:
    """Every measurement the searched rungs call for, in a fixed order (family, rung, role, seed)."""
    trials = []
    for family in sorted(families):
        for best in best_per_rung(rows, family):
            model = best.model_config(schema).to_dict()
            fewer = data_point_samples(best.fidelity)
            if fewer < best.fidelity:  # a rung too small to cut has no data point
                trials.append(FixedTrial(model, best.rung, fewer, plan.seed, TrialRole.DATA.value))
            if best.rung < top_rung:
                trials += [
                    FixedTrial(model, best.rung, best.fidelity, plan.seed + k, TrialRole.SEED.value)
                    for k in range(1, SEED_REPLICATES + 1)
                ]
    return trials


def missing_measurements(
    rows: list[TrialRecord], plan: PlanConfig, families: list[str], top_rung: int, schema: dict[str, Any]
) -> tuple[FixedTrial, ...]:
    """The measurements not yet in trials.csv (a resumed plan runs only these)."""
    planned = measurement_trials(rows, plan, families, top_rung, schema)
    return tuple(t for t in planned if not any(t.matches(r) for r in rows))


def measurement_rung(index: int, trials: tuple[FixedTrial, ...]) -> Rung:
    return Rung(
        index=index,
        flops=None,
        ceiling_flops=0.0,
        study_name=MEASUREMENT_STUDY,
        trials=len(trials),
        measure_latency=False,
        fixed=trials,
    )
