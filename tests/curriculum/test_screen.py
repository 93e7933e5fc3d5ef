"""The `screen` strategy (SPEED-RL screening through per-item num_samples), live calibration
(curriculum.calibration) and cost accounting (curriculum.cost), on hand-made sequences."""
import math

import numpy as np
import pytest

from curriculum import EventBatch, ItemPool, codec, make_strategy
from curriculum.calibration import Calibration, average_ranks, spearman
from curriculum.cost import CostLedger
from curriculum.experiment import ExperimentConfig, ExperimentState
from tests.curriculum.test_steps import same, split


def pool(n, cat="a"):
    return ItemPool([{"id": f"{cat}{i}", "prompt": f"{cat} {i}", "category": cat} for i in range(n)])


def rewards_for(idx, counts, mixed):
    """Items in `mixed` get alternating 1/0 rewards, the others all 1; nan beyond each count."""
    width = int(counts.max())
    r = np.where(np.isin(idx, list(mixed))[:, None], np.tile([1.0, 0.0], width)[None, :width], 1.0)
    r[np.arange(width)[None, :] >= counts[:, None]] = np.nan
    return r


def test_screened_item_that_is_not_mixed_gets_no_full_group():
    s = make_strategy("screen", pool(40), {"inner": {"name": "uniform"}, "screen_samples": 4}, seed=0, group_size=8)
    mixed = set(range(0, 40, 4))  # every 4th item has mixed outcomes, the rest are always solved
    full_of: dict[int, int] = {}
    screens = rollouts = 0
    for v in range(60):
        sel = s.select(8)
        counts = sel.num_samples
        assert set(counts.tolist()) <= {4, 8}
        for i, c in zip(sel.indices.tolist(), counts.tolist()):
            if c == 8:
                full_of[i] = full_of.get(i, 0) + 1
        screens += int((counts == 4).sum())
        rollouts += int(counts.sum())
        s.observe(EventBatch(sel.indices, rewards_for(sel.indices, counts, mixed), np.full(len(sel), v)))
    assert full_of and set(full_of) <= mixed  # only items whose screen was mixed ever got the full group
    d = s.describe()["details"]["screening"]
    assert d["screens"] == screens and d["screen_rollouts"] == 4 * screens  # screening rollouts are counted
    assert d["screen_rollouts"] + d["full_rollouts"] == rollouts == s.n_samples.sum()  # and spent like any
    assert d["fulls"] == sum(full_of.values()) and d["full_degenerate"] == 0


def test_qualified_item_is_leased_first_with_the_full_group_then_screened_again():
    s = make_strategy("screen", pool(10), {"inner": {"name": "uniform"}, "max_wait": 2}, seed=1, group_size=8)
    sel = s.select(3)
    assert sel.num_samples.tolist() == [4, 4, 4]
    a, b, c = sel.indices.tolist()
    s.observe(EventBatch.from_arrays([a, b, c], [[1, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]], 0))
    nxt = s.select(3)
    assert nxt.indices[0] == a and nxt.num_samples.tolist() == [8, 4, 4]  # qualified first, full group
    s.observe(EventBatch.from_arrays([a], [[1, 0, 1, 0, 1, 1, 0, 1]], 1))
    assert s.qualified_at[a] == -1  # the full group clears the verdict
    # a verdict not used within max_wait steps expires: the item would be screened again
    s.observe(EventBatch.from_arrays([b], [[1, 0, 0, 0]], 2))
    assert s.waiting(None).tolist() == [b]
    for v in range(3, 6):
        s.observe(EventBatch.from_arrays([c], [[0, 0, 0, 0]], v))
    assert s.waiting(None).tolist() == [] and s.allocate(np.array([b])).tolist() == [4]


def test_screen_is_idle_when_the_group_is_no_larger_than_a_screen():
    s = make_strategy("screen", pool(10), {"inner": {"name": "uniform"}, "screen_samples": 4}, seed=0, group_size=4)
    assert s.select(5).num_samples.tolist() == [4] * 5


def test_screen_params_are_validated():
    from curriculum.registry import InvalidParams

    with pytest.raises(InvalidParams, match="screen_samples"):
        make_strategy("screen", pool(3), {"screen_samples": 0})
    with pytest.raises(InvalidParams, match="inner"):
        make_strategy("screen", pool(3), {"inner": {"name": "screen"}})


def test_screen_snapshot_round_trip_and_k_reports():
    def warmed():
        s = make_strategy("screen", pool(50), {"inner": {"name": "uniform"}}, seed=3)
        rng = np.random.default_rng(0)
        for v in range(10):
            sel = s.select(12)
            r = (rng.random((len(sel), 8)) < 0.5).astype(float)
            r[np.arange(8)[None, :] >= sel.num_samples[:, None]] = np.nan
            s.observe(EventBatch(sel.indices, r, np.full(len(sel), v)))
        sel = s.select(16)
        r = (rng.random((len(sel), 8)) < 0.4).astype(float)
        r[np.arange(8)[None, :] >= sel.num_samples[:, None]] = np.nan
        return s, EventBatch(sel.indices, r, np.full(len(sel), 10))

    one, step = warmed()
    many, _ = warmed()
    one.observe(step)
    rng = np.random.default_rng(1)
    parts = split(step, 3, rng)
    for j in rng.permutation(3):
        many.observe(parts[j])
    same(one.state_dict(), many.state_dict())
    restored = make_strategy("screen", one.pool, {"inner": {"name": "uniform"}}, seed=99)
    restored.load_state_dict(codec.decode(codec.encode(one.state_dict())))
    a, b = one.select(10), restored.select(10)
    assert a.indices.tolist() == b.indices.tolist() and a.num_samples.tolist() == b.num_samples.tolist()


# -- calibration ----------------------------------------------------------------------------------------------------
def test_spearman_with_ties_matches_the_formula():
    assert average_ranks([3, 1, 3, 2]).tolist() == [2.5, 0, 2.5, 1]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None
    # ties: ranks a = [0.5, 0.5, 2, 3], b = [0, 1.5, 1.5, 3]; Pearson of the ranks by hand
    ra, rb = np.array([0.5, 0.5, 2, 3]) - 1.5, np.array([0, 1.5, 1.5, 3]) - 1.5
    want = (ra * rb).sum() / math.sqrt((ra**2).sum() * (rb**2).sum())
    assert spearman([0, 0, 1, 2], [0, 1, 1, 5]) == pytest.approx(want)


def test_calibration_scores_lease_time_predictions_per_version():
    c = Calibration(4)
    c.record([0, 1, 2, 3], [0.9, 0.1, 0.5, 0.7], [0.8, 0.7, 0.1, 0.2])
    b = EventBatch.from_arrays([0, 1, 2, 3, 0], [[1, 1], [0, 0], [1, 0], [1, 0], [0, 1]], 5)
    c.resolve(b, 5)
    m = c.metrics()
    row = m["latest"]
    assert row["version"] == 5 and row["n"] == 4  # item 0's second group has no pending prediction
    assert row["brier"] == pytest.approx(((0.8 - 1) ** 2 + (0.7 - 1) ** 2 + 0.1**2 + 0.2**2) / 4)
    assert row["spearman"] == pytest.approx(spearman([0.9, 0.1, 0.5, 0.7], [1, 0, 0.5, 0.5]))
    assert m["resolved"] == 4 and m["brier"] == pytest.approx(row["brier"])
    c.resolve(EventBatch.from_arrays([1], [[1, 0]], 6), 6)  # resolved already: nothing to score, no row
    assert c.metrics()["resolved"] == 4 and len(c.metrics()["history"]["version"]) == 1


@pytest.mark.parametrize("spec", [("mopps", {}), ("greso", {}), ("gated", {"inner": {"name": "uniform"}}),
                                  ("screen", {"inner": {"name": "uniform"}})])
def test_predicting_strategies_report_calibration(spec):
    from curriculum.simulator import SimConfig, SimulatedStudent

    student = SimulatedStudent(SimConfig(categories=3, noisy=0, items_per_category=40), seed=0)
    s = make_strategy(spec[0], ItemPool(student.items()), spec[1], seed=0)
    for v in range(40):
        sel = s.select(16)
        r = student.rollout(sel.indices, sel.num_samples)
        s.observe(EventBatch(sel.indices, r, np.full(len(sel), v)))
    cal = s.describe()["details"]["calibration"]
    assert cal["resolved"] > 300 and 0 <= cal["brier"] < 0.25  # better than always guessing 0.5
    assert cal["spearman"] > 0.3  # items differ in difficulty: the posterior ranks them
    assert cal["history"]["version"][-1] == 39
    if spec[0] == "gated":
        assert "precision" in cal["history"] and "recall" in cal["history"]
        g = s.describe()["details"]["skip_gate"]
        assert g["retests"] > 0 and 0 < g["retest_rollouts"] <= 8 * g["retests"]  # re-tests cost whole groups


# -- cost ----------------------------------------------------------------------------------------------------------
def test_cost_ledger_counts_tokens_and_waste():
    c = CostLedger()
    c.add(EventBatch.from_arrays([0, 1, 2], [[1, 1], [1, 0], [0, 0, 0, 0]], 0, {"tokens": [10, 30, 20]}))
    c.add(EventBatch.from_arrays([3], [[1, 0]], 1))  # no token count reported: rollouts only
    m = c.metrics()
    assert (m["groups"], m["rollouts"], m["tokens"], m["groups_with_tokens"]) == (4, 10, 60, 3)
    assert (m["waste_groups"], m["waste_rollouts"], m["waste_tokens"]) == (2, 6, 30)
    assert (m["informative_groups"], m["informative_tokens"]) == (2, 30)
    assert m["tokens_per_informative_group"] == 30 and m["rollouts_per_informative_group"] == 5
    assert m["waste_share"] == 0.6 and m["waste_token_share"] == 0.5


def test_experiment_reports_cost_and_keeps_it_in_the_snapshot():
    st = ExperimentState(ExperimentConfig(name="e", strategy="uniform"), [{"id": "q1", "prompt": "p"},
                                                                             {"id": "q2", "prompt": "p"}])
    st.apply({"op": "report", "now": 0, "results": [
        {"item_id": "q1", "rewards": [1, 1], "rollout_id": "r1", "signals": {"tokens": 7}},
        {"item_id": "q2", "rewards": [1, 0], "rollout_id": "r2", "signals": {"tokens": 5}}]})
    st.apply({"op": "report", "now": 0, "results": [
        {"item_id": "q2", "rewards": [1, 0], "rollout_id": "r2", "signals": {"tokens": 5}}]})  # duplicate: free
    cost = st.describe()["details"]["cost"]
    assert (cost["rollouts"], cost["tokens"], cost["waste_tokens"], cost["informative_tokens"]) == (4, 12, 7, 5)
    back = ExperimentState.from_state_dict(codec.decode(codec.encode(st.state_dict())))
    assert back.describe()["details"]["cost"] == cost


def test_a_snapshot_written_before_calibration_still_loads():
    s = make_strategy("mopps", pool(6), seed=0)
    sel = s.select(3)
    s.observe(EventBatch(sel.indices, np.ones((3, 8)), np.zeros(3)))
    d = codec.decode(codec.encode(s.state_dict()))
    for k in [k for k in d if k.startswith("cal_")]:
        del d[k]  # as a snapshot of mopps before it recorded predictions
    back = make_strategy("mopps", pool(6), seed=0)
    back.load_state_dict(d)
    assert back.cal_lease.tolist() == [0] * 6 and back.cal_seq == 0
    assert back.pred_alpha.tolist() == s.pred_alpha.tolist()
    assert back.select(3).indices.tolist() == s.select(3).indices.tolist()


def test_the_kept_waiting_list_equals_a_scan_of_the_pool():
    """waiting() reads a kept list of qualified items instead of scanning the pool: through reports split across
    reads (rewinds of the open step), late reports, a shorter then longer max_wait and a restore, it answers what
    a scan of `qualified_at` answers."""
    rng = np.random.default_rng(5)
    s = make_strategy("screen", pool(60), {"inner": {"name": "uniform"}, "max_wait": 3}, seed=2, group_size=8)

    def scan(st, exclude=None):
        at = st.qualified_at
        ok = (at >= 0) & (st.steps - at <= st.params.max_wait) & (True if exclude is None else ~exclude)
        idx = np.flatnonzero(ok)
        return idx[np.argsort(at[idx], kind="stable")].tolist()

    for v in range(1, 40):
        sel = s.select(12)
        parts = np.array_split(np.arange(len(sel)), 3)
        for k, part in enumerate(parts):
            idx = sel.indices[part]
            width = sel.num_samples[part]
            r = [(rng.random(int(w)) < rng.choice([0.0, 0.5, 1.0])).astype(float).tolist() for w in width]
            s.observe(EventBatch.from_arrays(idx, r, v - (k == 2 and v % 5 == 0)))
            if k == 1:
                assert s.waiting(None).tolist() == scan(s)
        if v == 15:
            s.set_params({"max_wait": 1})
        if v == 25:
            s.set_params({"max_wait": 6})
        exclude = rng.random(60) < 0.2
        assert s.waiting(None).tolist() == scan(s) and s.waiting(exclude).tolist() == scan(s, exclude)
    restored = make_strategy("screen", pool(60), {"inner": {"name": "uniform"}, "max_wait": 6}, seed=2, group_size=8)
    restored.load_state_dict(codec.decode(codec.encode(s.state_dict())))
    assert restored.waiting(None).tolist() == scan(s) and len(scan(s)) > 0


@pytest.mark.parametrize("name", ["screen", "gated"])
def test_a_wrapper_leaves_the_callers_mask_as_it_was(name):
    # the wrappers mark what the inner strategy may not pick in the caller's own mask and take the marks back
    s = make_strategy(name, pool(60), {"inner": {"name": "uniform"}}, seed=0, group_size=8)
    exclude = np.zeros(60, dtype=bool)
    exclude[::3] = True
    before = exclude.copy()
    for v in range(6):
        idx = s.select(10, exclude).indices
        assert np.array_equal(exclude, before) and not exclude[idx].any() and len(set(idx.tolist())) == len(idx)
        s.observe(EventBatch(idx, rewards_for(idx, np.full(len(idx), 8), set(range(0, 60, 2))), np.full(len(idx), v)))
