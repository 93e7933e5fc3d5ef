"""Faults: a killed owner and a restarted service lose nothing acknowledged and apply nothing twice."""
import numpy as np
import ray

from curriculum import codec
from curriculum.experiment import ExperimentConfig, replay
from services.keys import NAMESPACE, owner_name
from services.router import OwnerRouter
from services.store import ExperimentStore

ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 4}", "answer": str(i + 1)} for i in range(60)]


def loop(api, name, steps, rng, tag):
    for k in range(steps):
        b = api.lease(name, 8, lease_seconds=600)
        res = [{"item_id": it["id"], "rewards": rng.integers(0, 2, 8).tolist(), "rollout_id": f"{tag}-{k}-{it['id']}",
                "policy_version": k} for it in b["items"]]
        api.report(name, res, b["batch_id"])
        api.report(name, res[:2], b["batch_id"])  # a retried report: duplicates


def fresh_replay(redis_url, name):
    store = ExperimentStore(redis_url)
    cfg = store.config(name)
    records = [rec for _, rec in store.records(name)]
    return replay(ExperimentConfig.from_stored(cfg), records)


def test_killed_owner_restarts_with_state_equal_to_a_fresh_replay(api, redis_url):
    api.create_experiment("f1", "dump", items=ITEMS)
    rng = np.random.default_rng(0)
    loop(api, "f1", 5, rng, "a")
    before = api.state("f1")
    ray.kill(ray.get_actor(owner_name("f1"), namespace=NAMESPACE), no_restart=False)  # crash: Ray restarts it
    loop(api, "f1", 5, rng, "b")  # the stream of reports goes on through the restart
    after = api.state("f1")
    assert after["events"] == 80 and after["details"]["duplicates"] == 20
    assert before["events"] == 40
    replayed = fresh_replay(redis_url, "f1").describe()
    assert {k: replayed[k] for k in after} == after


def test_restart_from_snapshot_plus_tail(api, redis_url):
    api.create_experiment("f2", "posterior", items=ITEMS)
    rng = np.random.default_rng(1)
    loop(api, "f2", 3, rng, "a")
    owner = ray.get_actor(owner_name("f2"), namespace=NAMESPACE)
    snap_id = ray.get(owner.snapshot.remote())
    loop(api, "f2", 2, rng, "b")  # the tail after the snapshot
    live = api.state("f2")
    ray.kill(owner, no_restart=False)
    assert api.state("f2") == live
    # through the controller's call path, which waits out the restart (a raw handle can race it)
    restored = OwnerRouter(redis_url).call("f2", "metrics")["restored"]
    assert restored["snapshot"] and restored["replayed"] == 2 * 3  # per step: a lease and two reports
    data, last = ExperimentStore(redis_url).load_snapshot("f2")
    assert last == snap_id and codec.decode(data)["counters"]["batches"] == 3


def test_whole_service_restart_on_the_same_redis(stack, api, redis_url):
    api.create_experiment("f3", "sec", items=ITEMS)
    rng = np.random.default_rng(2)
    loop(api, "f3", 4, rng, "a")
    live_state, live_summary = api.state("f3"), api.experiment("f3")
    stack.stop()  # Serve and Ray go away; Redis (the session fixture) stays
    assert not ray.is_initialized()
    stack.start()
    from services.client import CurriculumClient

    with CurriculumClient(stack.url) as c:
        assert [e["name"] for e in c.experiments()] == ["f3"]
        assert c.state("f3") == live_state
        assert c.experiment("f3") == live_summary
        b = c.lease("f3", 4)
        # a rollout id acknowledged before the restart is still a duplicate after it
        old_rid = next(r["rollout_id"] for _, rec in ExperimentStore(redis_url).records("f3")
                       if rec["op"] == "report" for r in rec["results"])
        ack = c.report("f3", [{"item_id": "q0", "rewards": [1, 0], "rollout_id": old_rid},
                              {"item_id": b["items"][0]["id"], "rewards": [1, 1], "rollout_id": "new"}])
        assert ack == {"accepted": 1, "duplicates": 1}


def test_a_job_joining_the_cluster_reuses_its_controller_and_redis(stack, tmp_path, monkeypatch):
    """`curriculum run --address` / `deploy.job` on the chart's cluster: no second Redis, no second app, and
    stopping the job's stack leaves the cluster's controller serving."""
    import httpx
    from ray import serve

    from deploy.local import LocalStack

    monkeypatch.setenv("CURRICULUM_REDIS_URL", stack.redis_url)
    job = LocalStack(tmp_path, port=stack.port, address="auto").start()
    assert job.attached and job.redis is None and job.redis_url == stack.redis_url
    job.stop()
    assert "curriculum" in serve.status().applications
    assert httpx.get(f"{stack.url}/healthz", timeout=10).status_code == 200


def test_an_ingress_replica_killed_mid_stream_loses_nothing(stack, api):
    """One of the two ingress replicas dies between reports: the client's retries (same rollout ids) get every
    report acknowledged, each result applied once, while Serve replaces the replica."""
    from services.client import CurriculumClient

    api.create_experiment("f5", "sec", items=ITEMS)
    replicas = [a for a in ray.util.list_named_actors(all_namespaces=True)
                if a["namespace"] == "serve" and "curriculum#ControllerIngress" in a["name"]]
    assert len(replicas) == 2
    rng, sent = np.random.default_rng(5), set()
    with CurriculumClient(stack.url, retries=8) as c:  # backoff 0.2 s doubling: ~50 s in all
        for k in range(12):
            if k == 4:
                ray.kill(ray.get_actor(replicas[0]["name"], namespace="serve"), no_restart=False)
            b = c.lease("f5", 4, lease_seconds=600)
            res = [{"item_id": it["id"], "rewards": rng.integers(0, 2, 8).tolist(), "rollout_id": f"k{k}-{it['id']}"}
                   for it in b["items"]]
            ack = c.report("f5", res, b["batch_id"])
            assert ack["accepted"] + ack["duplicates"] == len(res)
            sent.update(r["rollout_id"] for r in res)
        assert c.state("f5")["events"] == len(sent) == 48
