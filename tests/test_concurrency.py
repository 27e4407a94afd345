"""How many trials the live cluster holds at once (pure: ``ray.nodes()``'s entries as data)."""

from __future__ import annotations

from unimixer_plan.search.concurrency import trials_that_fit


def node(cpus: float, gpus: float = 0, alive: bool = True) -> dict:
    return {"Alive": alive, "Resources": {"CPU": cpus, "GPU": gpus} if gpus else {"CPU": cpus}}


def test_trials_fit_per_node_not_on_the_cluster_total():
    assert trials_that_fit([node(0), node(8)], 1, 0) == 8  # a head with no CPUs for trials, one worker
    assert trials_that_fit([node(3), node(3)], 2, 0) == 2  # 6 CPUs in all, but one 2-CPU trial per node
    assert trials_that_fit([node(8), node(8, alive=False)], 1, 0) == 8  # a dead node holds nothing
    assert trials_that_fit([node(0)], 1, 0) == 0


def test_gpu_trials_are_counted_by_whichever_resource_runs_out_first():
    assert trials_that_fit([node(16, gpus=2), node(16)], 1, 1) == 2
    assert trials_that_fit([node(2, gpus=8)], 1, 1) == 2
    assert trials_that_fit([node(4, gpus=1)], 0.5, 0.25) == 4
