"""The core's fast paths (benchmarks/core_throughput.py) give what the general paths give: the batched arm draw,
the grouped candidate draw, filter's per-arm choice, the cached noise gate, and the K-reports property on a
pool large enough for every fast path to be taken."""
import numpy as np
import pytest

from curriculum import EventBatch, ItemPool, make_strategy
from curriculum.noise_guard import NoiseGuard
from curriculum.sampling import ArmSampler, grouped_candidates

from .test_steps import same


def pool(arms=4, per_arm=2000):
    return ItemPool([{"id": f"q{i}", "prompt": str(i), "category": f"c{i % arms}", "difficulty": float(i % arms)}
                     for i in range(arms * per_arm)])


def test_draw_counts_equals_one_draw_per_group():
    rng = np.random.default_rng(3)
    groups = [np.arange(a, 400, 4) for a in range(4)]  # 100 items each
    fast, slow = ArmSampler(), ArmSampler()
    fast.sync(groups, 400, np.random.default_rng(0))
    slow.sync(groups, 400, np.random.default_rng(0))
    taken = np.zeros(400, dtype=bool)
    for _ in range(20):
        counts = rng.integers(0, 30, size=4)
        room = slow.offsets[1:] - slow.offsets[:-1] - slow.cursor
        got = fast.draw_counts(counts)
        if got is None:  # only when a group would reach the end of its epoch: the caller then draws group by group
            assert (counts > room).any()
            break
        want = [slow.draw(a, int(c), np.random.default_rng(9), None, taken) for a, c in enumerate(counts) if c]
        taken[:] = False
        assert np.array_equal(got, np.concatenate(want)) and np.array_equal(fast.cursor, slow.cursor)
    else:
        pytest.fail("no epoch end was reached")
    assert fast.draw_counts(np.full(4, 101)) is None  # more than a group has


def test_grouped_candidates_are_unique_eligible_and_exact_per_group():
    p = pool()
    order, offsets = p.arm_order()
    exclude = np.zeros(p.size, dtype=bool)
    exclude[::10] = True  # (a third excluded would leave too few of 1.3 x want drawn: the caller falls back)
    want = np.array([40, 0, 7, 100])
    items, g = grouped_candidates(np.random.default_rng(1), want, order, offsets, exclude)
    assert len(np.unique(items)) == len(items) and not exclude[items].any()
    assert np.array_equal(np.bincount(g, minlength=4), want) and (np.diff(g) >= 0).all()
    assert np.array_equal(p.category[items], g)
    assert grouped_candidates(np.random.default_rng(1), np.array([1500, 1, 1, 1]), order, offsets) is None


def test_filter_choose_in_arms_equals_choose_per_arm():
    p = pool()
    f = make_strategy("filter", p, seed=0)
    rng = np.random.default_rng(2)
    for v in range(4):  # some items seen, in band or not, some stale
        sel = f.select(300)
        f.observe(EventBatch(sel.indices, (rng.random((len(sel), 8)) < rng.random((len(sel), 1))) * 1.0,
                             np.full(len(sel), 60 * v)))
    cand, arm = grouped_candidates(rng, np.array([64, 32, 0, 128]), *p.arm_order())
    counts = np.array([8, 4, 0, 16])
    got = f.choose_in_arms(counts, cand, arm)
    want = np.concatenate([f.choose(int(c), cand[arm == a]) for a, c in enumerate(counts) if c])
    assert np.array_equal(got, want)


def test_noise_gate_cache_follows_folds_params_and_snapshots():
    p = pool(arms=2, per_arm=500)
    s = make_strategy("sec", p, seed=0, params={"noise_guard": {"min_groups": 8, "min_pairs": 1000}})
    rng = np.random.default_rng(0)
    for v in range(12):
        sel = s.select(64)
        rewards = (rng.random((len(sel), 8)) < 0.5) * 1.0  # noise in both arms
        s.observe(EventBatch(sel.indices, rewards, np.full(len(sel), v)))
        assert np.array_equal(s.noise_gate(), NoiseGuard.noise_gate(s))
    assert s.noise_gate().any()
    s.set_params({"noise_guard": {"enabled": False}})
    assert not s.noise_gate().any()
    t = make_strategy("sec", p, seed=0)
    t.load_state_dict(s.state_dict())
    assert np.array_equal(t.noise_gate(), NoiseGuard.noise_gate(s))


@pytest.mark.parametrize("name", ["uniform", "sec", "dump", "progress", "filter", "compose", "uniform_guard"])
def test_k_reports_equal_one_on_a_large_pool(name):
    """At 2,000 items per arm the batched draws are taken; the K-reports property holds through them."""
    p = pool()
    one, many = make_strategy(name, p, seed=5), make_strategy(name, p, seed=5)
    rng = np.random.default_rng(7)
    for v in range(6):
        a, b = one.select(128), many.select(128)
        assert np.array_equal(a.indices, b.indices)
        rewards = (rng.random((len(a), 8)) < rng.random((len(a), 1))) * 1.0
        one.observe(EventBatch(a.indices, rewards, np.full(len(a), v)))
        for part in rng.permutation(4):
            rows = np.arange(len(a))[part::4]
            many.observe(EventBatch(a.indices[rows], rewards[rows], np.full(len(rows), v)))
    same(one.state_dict(), many.state_dict())
    assert one.describe() == many.describe()


def test_padded_and_dense_batches_derive_the_same_statistics():
    dense = EventBatch(np.array([0, 1]), np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([0, 0]))
    padded = EventBatch.concat([dense, EventBatch(np.array([2]), np.array([[1.0, 0.0, 1.0]]), np.array([0]))])
    assert np.array_equal(padded.mean[:2], dense.mean) and np.array_equal(padded.abs_adv[:2], dense.abs_adv)
    assert padded.count.tolist() == [2, 2, 3]
    with pytest.raises(ValueError):
        EventBatch(np.array([0, 1]), np.array([[1.0, 0.0], [np.nan, np.nan]]), np.array([0, 0]))


def test_dump_window_same_on_the_dense_and_the_padded_path():
    """The same groups, once as a dense batch (rows ranked per arm) and once with a padding column (values
    ranked one by one, nan dropped), fill the same windows."""
    p = pool(arms=3, per_arm=100)
    dense, padded = (make_strategy("dump", p, seed=0, params={"window": 50}) for _ in range(2))
    rng = np.random.default_rng(4)
    for v in range(6):
        sel = dense.select(40)
        assert np.array_equal(sel.indices, padded.select(40).indices)
        rewards = (rng.random((len(sel), 8)) < 0.5) * 1.0
        dense.observe(EventBatch(sel.indices, rewards, np.full(len(sel), v)))
        wide = np.hstack([rewards, np.full((len(sel), 1), np.nan)])
        padded.observe(EventBatch(sel.indices, wide, np.full(len(sel), v)))
        assert np.allclose(dense.ring, padded.ring)
        for name in ("n_resp", "n_win", "ring_pos"):
            assert np.array_equal(getattr(dense, name), getattr(padded, name))
