"""clutr_lite: the regret proxy, a representation fitted once and frozen, and the teacher's update."""
import itertools
from math import comb

import numpy as np
import pytest

from curriculum import EventBatch, ItemPool, codec, make_strategy
from curriculum.sources import ArithmeticSource
from curriculum.strategies.clutr_lite import regret

_version = itertools.count(1)


def arith_pool(per=100):
    return ItemPool(ArithmeticSource(min_digits=1, max_digits=4, items_per_level=per).items())


def test_regret_is_any_success_minus_the_mean_for_binary_groups():
    r = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, np.nan]], dtype=float)
    assert regret(r).tolist() == pytest.approx([0.75, 0.0, 0.0, 1 / 3])


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_expected_regret_matches_the_closed_form(p):
    rng = np.random.default_rng(0)
    mc = regret((rng.random((200_000, 8)) < p).astype(float)).mean()
    assert mc == pytest.approx(1 - (1 - p) ** 8 - p, abs=0.01)
    exact = sum(comb(8, k) * p**k * (1 - p) ** (8 - k) * ((k > 0) - k / 8) for k in range(9))
    assert exact == pytest.approx(1 - (1 - p) ** 8 - p, abs=1e-12)


def test_clusters_recover_digit_levels_when_the_features_separate_them():
    s = make_strategy("clutr_lite", arith_pool(), {"clusters": 4})
    pairs = set(zip(s.pool.category.tolist(), s.cluster.tolist()))
    assert len(pairs) == 4 and len({c for _, c in pairs}) == 4  # one cluster per level, one level per cluster


def test_representation_is_frozen_across_snapshots_and_new_items_join_frozen_centroids():
    pool = arith_pool(50)
    a = make_strategy("clutr_lite", pool, {"clusters": 4}, seed=1)
    cent = a.centroids.copy()
    b = make_strategy("clutr_lite", pool, {"clusters": 4}, seed=99)  # another seed would fit other clusters
    b.load_state_dict(codec.decode(codec.encode(a.state_dict())))
    assert np.array_equal(b.centroids, cent) and np.array_equal(b.cluster, a.cluster)
    pool.add([{"id": "late-1", "prompt": "7+2=", "category": "d1"}, {"id": "late-2", "prompt": "1234+4321="}])
    a.select(1)
    assert np.array_equal(a.centroids, cent)  # not refitted
    d1 = a.cluster[pool.index_of("arith-d1-000000")]
    d4 = a.cluster[pool.index_of("arith-d4-000000")]
    assert a.cluster[pool.index_of("late-1")] == d1 and a.cluster[pool.index_of("late-2")] == d4


def test_teacher_moves_q_toward_the_clusters_mean_regret_and_draws_by_softmax():
    s = make_strategy("clutr_lite", arith_pool(50), {"clusters": 4, "eta": 0.5, "tau": 0.1, "eps": 0.0})
    c1 = s.cluster[s.pool.index_of("arith-d1-000000")]
    in_c1 = np.flatnonzero(s.cluster == c1)[:2]
    s.observe(EventBatch.from_arrays(in_c1, [[1, 0, 0, 0], [1, 1, 1, 1]], next(_version)))
    assert s.q[c1] == pytest.approx(0.5 * (0.75 + 0.0) / 2)
    assert np.count_nonzero(s.q) == 1
    sel = s.select(40)
    assert (s.cluster[sel.indices] == c1).mean() > 0.5  # Q = 0.19 at tau 0.1: e^1.9 / (e^1.9 + 3) = 0.68


def test_the_noise_guard_caps_a_coin_flip_cluster():
    from curriculum.simulator import SimConfig, SimulatedStudent

    cfg = SimConfig(categories=3, items_per_category=100)
    student = SimulatedStudent(cfg, seed=0)
    items = [{"id": it["id"], "prompt": it["prompt"], "category": "all"} for it in student.items()]  # no arms
    s = make_strategy("clutr_lite", ItemPool(items), {"clusters": 8}, seed=0)
    coin = s.cluster[student.noisy]
    # the coin's prompts ("level 3 item ...") have a cluster of their own (with 4 clusters they share one with
    # "level 1 item ...", and a cluster half learnable shows item signal: the guard rightly leaves it alone)
    assert len(set(coin.tolist())) == 1 and not np.isin(s.cluster[~student.noisy], coin).any()
    for _ in range(60):
        sel = s.select(32)
        r = student.rollout(sel.indices, sel.num_samples)
        s.observe(EventBatch.from_arrays(sel.indices, r, next(_version)))
        student.learn(sel.indices, r)
    c = s.describe()["details"]["clusters"][coin[0]]
    assert c["noise"] and c["p"] <= 0.15 / 8 + 1e-9
    off = make_strategy("clutr_lite", ItemPool(items), {"clusters": 8, "noise_guard": {"enabled": False}}, seed=0)
    off.load_state_dict({**s.state_dict(), "params": off.params.model_dump(mode="json")})
    assert off.cluster_probs()[coin[0]] > 0.3  # the coin's regret ~0.5 wins the softmax without the guard
