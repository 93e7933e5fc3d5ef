"""The rollout actor's loop against the real controller (owner actors on a local Ray) and a real Redis:
lease -> generate -> verify -> one report -> enqueue; new weights between batches; broken verifiers counted."""
from __future__ import annotations

import pytest

from workers.model import TinyModelConfig, build_tiny_model, save_policy
from workers.queue import RolloutQueue
from workers.rollout import RolloutWorker
from workers.weights import WeightSubscriber, publish


@pytest.fixture()
def setup(ray_local, redis_url, tmp_path):
    from services.incluster import InClusterClient

    model, tok = build_tiny_model(TinyModelConfig(seed=3))
    path = save_policy(model, tok, tmp_path / "policy")
    client = InClusterClient(redis_url)
    name = f"rollout-{tmp_path.name[-12:].lower().replace('_', '-')}"
    items = [{"id": f"ok-{i}", "prompt": f"{i}+1=", "answer": str(i + 1), "category": "good",
              "metadata": {"verifier": "digits"}} for i in range(6)]
    items += [{"id": f"bad-{i}", "prompt": f"{i}+2=", "answer": str(i + 2), "category": "broken",
               "metadata": {"verifier": "no_such_verifier"}} for i in range(2)]
    client.create_experiment(name, "uniform", {}, items=items, group_size=4, seed=0)
    yield client, name, redis_url, str(path), model
    client.delete_experiment(name)
    RolloutQueue(redis_url, name).delete()
    WeightSubscriber(redis_url, name).delete()


def test_one_batch_flows_to_controller_and_queue(setup):
    client, name, redis_url, path, _ = setup
    w = RolloutWorker({"experiment": name, "redis_url": redis_url, "model_path": path, "batch_size": 8,
                       "max_tokens": 3})
    assert w.step() == 8
    state = client.state(name)
    assert state["events"] == 8  # one event per group, all in one report
    beat = w.heartbeat()
    assert beat["batches"] == 1 and beat["rollouts"] == 32
    assert beat["verifier_errors"] == 8 and "no_such_verifier" in beat["last_error"]  # 2 items x 4 samples
    q = RolloutQueue(redis_url, name)
    got = q.read("t", 100, block_ms=10)
    assert len(got) == 8 and all(len(d.group.completions) == 4 for d in got)
    broken = [d.group for d in got if d.group.category == "broken"]
    assert broken and all(r == 0.0 for g in broken for r in g.rewards)  # a verifier that throws scores 0
    assert all(len(c) <= 3 for d in got for c in d.group.completions)
    # everything is leased and reported: the next lease gets the items again only in a new epoch
    assert {d.group.item_id for d in got} == {f"ok-{i}" for i in range(6)} | {"bad-0", "bad-1"}


def test_new_weights_are_loaded_between_batches(setup):
    _, name, redis_url, path, model = setup
    w = RolloutWorker({"experiment": name, "redis_url": redis_url, "model_path": path, "batch_size": 2})
    other, _ = build_tiny_model(TinyModelConfig(seed=11))
    publish(redis_url, name, 7, other.state_dict())
    w.step()
    assert w.backend.version == 7 and w.heartbeat()["weight_updates"] == 1
    sd = w.backend.model.state_dict()
    assert all((sd[k] == v).all() for k, v in other.state_dict().items())
    got = RolloutQueue(redis_url, name).read("t", 10, block_ms=10)
    assert got and all(d.group.policy_version == 7 for d in got)  # groups carry the version that made them


def test_the_policys_features_travel_to_the_strategy(setup):
    """hf backend -> worker's report (`features`) -> owner -> the `gain` strategy's observe."""
    client, name, redis_url, path, _ = setup
    gain = f"{name}-gain"
    client.create_experiment(gain, "gain", {}, items=[{"id": f"q{i}", "prompt": f"{i}+1=", "answer": str(i + 1),
                                                        "metadata": {"verifier": "digits"}} for i in range(6)])
    try:
        w = RolloutWorker({"experiment": gain, "redis_url": redis_url, "model_path": path, "batch_size": 4,
                           "max_tokens": 2})
        assert w.step() == 4
        d = client.state(gain)["details"]
        assert d["measured"] == 4 and 0 < d["last_angle"] <= 1 and "fallback" not in d
    finally:
        client.delete_experiment(gain)
        RolloutQueue(redis_url, gain).delete()
