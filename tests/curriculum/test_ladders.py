"""coach and horizon: a difficulty level that follows the learner's pass rate, on hand-built evidence."""
import itertools

import numpy as np
import pytest

from curriculum import EventBatch, InvalidParams, ItemPool, make_strategy
from curriculum.experiment import ExperimentConfig, ExperimentState

_version = itertools.count(1)


def ladder_pool(levels=4, per=50, noise=True):
    items = [{"id": f"L{k}-{i}", "prompt": "p", "category": f"L{k}", "difficulty": float(k)}
             for k in reversed(range(levels)) for i in range(per)]  # hardest first: the ladder must sort them
    if noise:
        items += [{"id": f"N-{i}", "prompt": "p", "category": "noise"} for i in range(per)]
    return ItemPool(items)


def step(s, p_success, groups=16, g=8):
    """One step (policy version) of `groups` groups drawn by the strategy, each with round(p * g) successes."""
    sel = s.select(groups)
    k = round(p_success * g)
    rewards = np.array([[1.0] * k + [0.0] * (g - k)] * len(sel))
    s.observe(EventBatch.from_arrays(sel.indices, rewards, next(_version)))
    return sel


def level_name(s):
    return s.describe()["details"]["level_arm"]


def test_coach_moves_the_level_up_and_down_with_the_pass_rate():
    s = make_strategy("coach", ladder_pool(), {"raise_at": 0.75, "lower_below": 0.25, "window": 32,
                                               "min_groups": 32})
    assert level_name(s) == "L0"
    sel = step(s, 1.0)
    assert set(s.pool.category[sel.indices].tolist()) == {s.pool.categories.index("L0")}  # all at the level
    assert level_name(s) == "L0"  # 16 groups < min_groups: not yet
    step(s, 1.0)
    assert level_name(s) == "L1"  # 32 groups at pass rate 1.0 >= 0.75
    for _ in range(2):
        step(s, 0.5)
    assert level_name(s) == "L1"  # between the thresholds: stay
    step(s, 0.875)
    assert level_name(s) == "L1"  # the window still holds 16 groups at 0.5: 0.6875 < 0.75
    step(s, 0.875)
    assert level_name(s) == "L2"
    for _ in range(2):
        step(s, 0.0)
    assert level_name(s) == "L1"  # below lower_below: back down
    assert [m[1] for m in s.describe()["details"]["moves"]] == [1, 2, 1]
    w = {a["name"]: a["weight"] for a in s.describe()["arms"]}
    assert w["L1"] == 1.0 and w["noise"] == 0.0  # arms without a difficulty are not on the ladder


def test_coach_stays_at_the_bottom_and_top_and_frozen_never_moves():
    s = make_strategy("coach", ladder_pool(levels=2), {"min_groups": 16, "window": 16})
    step(s, 0.0)
    assert level_name(s) == "L0"
    for _ in range(3):
        step(s, 1.0)
    assert level_name(s) == "L1"
    f = make_strategy("coach", ladder_pool(), {"start": 2, "frozen": True, "min_groups": 16, "window": 16})
    for p in (1.0, 1.0, 0.0, 0.0):
        step(f, p)
    assert level_name(f) == "L2" and f.describe()["details"]["moves"] == []


def test_coach_replay_spreads_a_share_over_lower_levels():
    s = make_strategy("coach", ladder_pool(), {"start": 2, "replay": 0.2})
    p = s.arm_probs()
    names = s.pool.categories
    assert p[names.index("L2")] == pytest.approx(0.8)
    assert p[names.index("L0")] == pytest.approx(0.1) and p[names.index("L1")] == pytest.approx(0.1)


def test_horizon_advances_exactly_at_the_gate_and_never_retreats():
    s = make_strategy("horizon", ladder_pool(noise=False), {"advance_at": 0.5, "min_groups": 32, "window": 32})
    step(s, 0.5)
    assert level_name(s) == "L0"  # 16 groups: the gate needs 32
    step(s, 0.5)
    assert level_name(s) == "L1"  # 32 groups at exactly 0.5
    for _ in range(3):
        step(s, 0.375)  # below the gate
    assert level_name(s) == "L1"
    for _ in range(2):
        step(s, 0.0)
    assert level_name(s) == "L1"  # no demotion in h1's stage-wise rule
    stages = make_strategy("horizon", ladder_pool(noise=False), {"stage_steps": 3})
    for _ in range(7):
        step(stages, 0.0)
    assert level_name(stages) == "L2"  # fixed-length stages: advance every 3 steps whatever the pass rate


def test_horizon_target_only_baseline_starts_at_the_top():
    s = make_strategy("horizon", ladder_pool(noise=False), {"start": 99})
    assert level_name(s) == "L3"


def test_a_ladder_over_named_arms_never_climbs_past_its_top_nor_draws_the_others():
    s = make_strategy("horizon", ladder_pool(), {"arms": ["L1", "L0"], "min_groups": 16, "window": 16})
    assert level_name(s) == "L0"  # sorted by difficulty, whatever the order given
    drawn = set()
    for _ in range(6):
        drawn |= set(s.pool.category[step(s, 1.0).indices].tolist())
    assert level_name(s) == "L1"  # mastered, but L2 and L3 are not on this ladder
    assert drawn == {s.pool.categories.index("L0"), s.pool.categories.index("L1")}
    c = make_strategy("coach", ladder_pool(), {"arms": ["L2"], "start": 5})
    assert level_name(c) == "L2"


def test_ladder_params_are_validated():
    with pytest.raises(InvalidParams, match="lower_below"):
        make_strategy("coach", ladder_pool(), {"raise_at": 0.3, "lower_below": 0.5})
    with pytest.raises(InvalidParams, match="min_groups"):
        make_strategy("horizon", ladder_pool(), {"window": 4, "min_groups": 8})


def test_horizon_over_a_generated_chain_pool_moves_from_h1_up():
    cfg = ExperimentConfig(name="e", strategy="horizon", params={"min_groups": 8, "window": 8},
                           generator={"kind": "chain", "max_horizon": 3, "per_arm": 16})
    st = ExperimentState(cfg)
    for k in range(6):
        out = st.apply({"op": "lease", "n": 8, "worker": "w", "lease_seconds": 5.0, "now": 10.0 * k,
                        "batch_id": f"b{k}"})
        st.apply({"op": "report", "now": 10.0 * k + 1, "results": [
            {"item_id": i["id"], "rewards": [1, 1, 1, 0], "rollout_id": f"{k}-{i['id']}", "policy_version": k}
            for i in out["items"]]})
    assert st.describe()["details"]["level_arm"] == "h3"
    assert {i["category"] for i in out["items"]} == {"h3"}
