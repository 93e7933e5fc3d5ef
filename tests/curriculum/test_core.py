import math

import numpy as np
import pytest
from pydantic import ValidationError

from curriculum import EventBatch, ItemPool, RewardEvent
from curriculum import codec
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
