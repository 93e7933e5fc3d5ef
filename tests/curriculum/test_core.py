import math

import numpy as np
import pytest
from pydantic import ValidationError

from curriculum import EventBatch, ItemPool, RewardEvent, codec
from curriculum.items import Item


def test_pool_dense_indices_idempotent_add_and_arms():
    pool = ItemPool([{"id": "a", "prompt": "1+1=", "category": "d1"}, {"id": "b", "prompt": "10+1=", "category": "d2"}])
    assert pool.add([{"id": "a", "prompt": "changed"}, {"id": "c", "prompt": "2+2=", "category": "d1"}]) == (1, 1)
    assert pool.index_of("c") == 2 and pool.prompts[0] == "1+1="  # existing item unchanged
    assert pool.categories == ["d1", "d2"]
    assert [m.tolist() for m in pool.arm_members()] == [[0, 2], [1]]
    assert pool.item(1).category == "d2"
    pool.add([{"id": "d", "prompt": "x"}])  # missing category -> arm "default"
    assert pool.categories[-1] == "default" and pool.arm_sizes().tolist() == [2, 1, 1]
    with pytest.raises(KeyError):
        pool.indices_of(["a", "zz"])


def test_item_validation_names_field():
    with pytest.raises(ValidationError) as e:
        Item(id="", prompt="p")
    assert "id" in str(e.value)
    with pytest.raises(ValidationError) as e:
        Item(id="x", prompt="p", difficulty=float("nan"))
    assert "difficulty" in str(e.value)


def test_group_statistics_by_hand():
    b = EventBatch.from_arrays([0, 1, 2], [[1, 0, 1, 0], [1, 1, 1, 1], [1, 0, 0]])
    assert b.mean.tolist() == [0.5, 1.0, pytest.approx(1 / 3)]
    assert b.std[0] == pytest.approx(0.5) and b.std[1] == 0
    assert b.std[2] == pytest.approx(math.sqrt(2) / 3)  # population std of a ragged group
    adv = b.advantages
    assert adv[0].tolist() == pytest.approx([1, -1, 1, -1], abs=1e-5)
    assert np.isnan(adv[2, 3])  # padding stays nan
    # binary rewards: mean |A| = 2 sqrt(p (1 - p))
    assert b.abs_adv[0] == pytest.approx(1.0, abs=1e-5)
    assert b.abs_adv[2] == pytest.approx(2 * math.sqrt(2 / 9), abs=1e-5)
    assert b.degenerate.tolist() == [False, True, False]
    assert b.count.tolist() == [4, 4, 3]


def test_reward_event_rejects_non_finite_and_empty():
    for bad in ([float("nan")], [1.0, float("inf")], []):
        with pytest.raises(ValidationError) as e:
            RewardEvent(item_id="q", rewards=bad)
        assert "rewards" in str(e.value)
    ev = RewardEvent(item_id="q", rewards=[1, 0], signals={"tokens": 12})
    b = EventBatch.from_events([ev], [5])
    assert b.item.tolist() == [5] and b.signals["tokens"].tolist() == [12.0]
    assert EventBatch.from_dict(b.to_dict()).mean.tolist() == b.mean.tolist()


def test_codec_round_trip_without_pickle():
    state = {"a": np.arange(5, dtype=np.int32), "b": {"c": [1, 2.5, None, "s"], 3: np.zeros((2, 2))}, "d": True}
    out = codec.decode(codec.encode(state))
    assert out["a"].dtype == np.int32 and out["a"].tolist() == [0, 1, 2, 3, 4]
    assert out["b"]["c"] == [1, 2.5, None, "s"] and out["b"][3].shape == (2, 2) and out["d"] is True


def test_experiment_snapshot_keeps_the_pool_in_columns_and_reads_old_snapshots():
    from curriculum.experiment import ExperimentConfig, ExperimentState

    items = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": "ab"[i % 2], "answer": None if i == 3 else str(i + 1),
              "difficulty": 0.5 if i % 2 else None, "metadata": {"verifier": "coin", "k": [i]} if i % 3 == 0 else {}}
             for i in range(7)]
    cfg = ExperimentConfig(name="e", strategy="sec")
    st = ExperimentState(cfg, items)
    d = codec.decode(codec.encode(st.state_dict()))
    assert "items" not in d and d["pool"]["ids"] == [f"q{i}" for i in range(7)]
    back = ExperimentState.from_state_dict(d)
    assert back.pool.to_items() == st.pool.to_items() and back.pool.categories == ["a", "b"]
    assert back.pool.index_of("q5") == 5 and back.pool.add([items[2]]) == (0, 1)
    assert codec.encode(back.state_dict()) == codec.encode(st.state_dict())
    # a snapshot written before the pool went into columns (one dict per item) still restores the same state
    old = {**d, "items": [it.model_dump(mode="json") for it in st.pool.to_items()]}
    del old["pool"]
    assert ExperimentState.from_state_dict(old).pool.to_items() == st.pool.to_items()
    with pytest.raises(ValueError, match="columns"):
        ExperimentState.from_state_dict({**d, "pool": {**d["pool"], "prompts": d["pool"]["prompts"][:-1]}})


def test_reward_range_maps_onto_unit_interval_and_rejects_outside():
    from curriculum.experiment import ExperimentConfig, ExperimentState, InvalidReport

    items = [{"id": f"q{i}", "prompt": "p", "category": "a"} for i in range(4)]
    st = ExperimentState(ExperimentConfig(name="e", strategy="filter", reward_range=(-1, 1)), items)
    st.apply({"op": "report", "now": 0.0, "results": [
        {"item_id": "q0", "rewards": [1, -1, -1, -1], "policy_version": 0},  # one right in four -> 0.25
        {"item_id": "q1", "rewards": [-1, -1], "policy_version": 0}]})  # all wrong -> 0, not -1
    assert st.strategy.p_est[:2].tolist() == [0.25, 0.0]
    assert st.strategy.pass_rate()[:2].tolist() == [0.25, 0.0]
    with pytest.raises(InvalidReport, match=r"results\[1\]\.rewards\[0\]: 1\.5 is outside"):
        st.validate_report([RewardEvent(item_id="q2", rewards=[0]), RewardEvent(item_id="q3", rewards=[1.5])])
    with pytest.raises(ValidationError, match="low < high"):
        ExperimentConfig(name="e", strategy="uniform", reward_range=(1, -1))


def test_a_result_without_policy_version_counts_as_the_current_one():
    from curriculum.experiment import ExperimentConfig, ExperimentState

    items = [{"id": f"q{i}", "prompt": "p", "category": "a"} for i in range(3)]
    st = ExperimentState(ExperimentConfig(name="e", strategy="sec"), items)
    st.apply({"op": "report", "now": 0.0, "results": [{"item_id": "q0", "rewards": [1, 0], "policy_version": 4}]})
    st.apply({"op": "report", "now": 0.0, "results": [{"item_id": "q1", "rewards": [1, 0]}]})
    assert st.policy_version == 4 and st.strategy.steps == 1 and st.strategy.version == 4
