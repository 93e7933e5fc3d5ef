"""Idempotent leases over REST and in-cluster: one key, one batch while the lease lives -- across retries,
ranks, and an owner crash; a bad key is a field-named 422 that leases nothing."""
import pytest
import ray

from services.errors import ServiceError
from services.incluster import InClusterClient
from services.keys import NAMESPACE, owner_name
from services.store import ExperimentStore

ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 3}", "answer": str(i + 1)} for i in range(30)]


def test_same_key_same_batch_for_every_caller_and_after_an_owner_crash(api, redis_url):
    api.create_experiment("k1", "sec", items=ITEMS, group_size=4)
    inc = InClusterClient(redis_url)
    a = api.lease("k1", 6, worker="rank-0", lease_key="run-1/step-0")
    log_len = len(list(ExperimentStore(redis_url).records("k1")))
    b = api.lease("k1", 6, worker="rank-1", lease_key="run-1/step-0")   # another rank, same step
    c = inc.lease("k1", 6, worker="rank-2", lease_key="run-1/step-0")   # in-cluster, same answer
    assert a == b == c and len(a["items"]) == 6
    assert (
        len(list(ExperimentStore(redis_url).records("k1"))) == log_len
    )  # the hits were answered without logging anything
    assert api.state("k1")["details"]["batches"] == 1
    d = api.lease("k1", 6, lease_key="run-1/step-1")
    assert d["batch_id"] != a["batch_id"] and not {i["id"] for i in d["items"]} & {i["id"] for i in a["items"]}
    # reporting ends the items' leases, not the key: a restarted trainer asking again gets its batch back
    res = [{"item_id": it["id"], "rewards": [1, 0, 1, 0], "rollout_id": f"k1/{a['batch_id']}/{it['id']}"}
           for it in a["items"]]
    assert api.report("k1", res, a["batch_id"])["accepted"] == 6
    ray.kill(ray.get_actor(owner_name("k1"), namespace=NAMESPACE), no_restart=False)  # crash: replayed from Redis
    again = api.next_batch("k1", 6, results=res, batch_id=a["batch_id"], lease_key="run-1/step-0")
    assert again["reported"] == {"accepted": 0, "duplicates": 6}
    assert {k: again[k] for k in a} == a
    assert api.state("k1")["details"]["batches"] == 2 and api.state("k1")["events"] == 6


def test_a_key_lives_as_long_as_its_lease(api):
    api.create_experiment("k2", "uniform", items=ITEMS)
    a = api.lease("k2", 5, lease_seconds=0.5, lease_key="s0")
    import time

    time.sleep(0.7)
    b = api.lease("k2", 5, lease_seconds=60, lease_key="s0")
    assert b["batch_id"] != a["batch_id"]
    assert api.state("k2")["details"]["lease_keys"] == 1  # s0's first lease expired with its items


@pytest.mark.parametrize("key,where", [("", "lease_key"), ("x" * 257, "lease_key")])
def test_bad_keys_are_rejected_and_lease_nothing(api, redis_url, key, where):
    api.create_experiment("k3", "uniform", items=ITEMS)
    r = api.http.post("/v1/experiments/k3/batches", json={"size": 4, "lease_key": key})
    assert r.status_code == 422 and where in r.json()["error"]["message"]
    with pytest.raises(ServiceError) as e:
        InClusterClient(redis_url).lease("k3", 4, lease_key=key)
    assert e.value.status == 422 and where in e.value.message
    assert api.state("k3")["details"]["batches"] == 0
