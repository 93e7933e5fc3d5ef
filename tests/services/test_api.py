"""The REST contract of API.md, against a real Serve app, real owners and a real Redis."""
import math
import time

import httpx
import pytest

from services.errors import ServiceError

ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 3}", "answer": str(i + 1)} for i in range(30)]


def create(api, name="exp1", strategy="sec", **kw):
    return api.create_experiment(name, strategy, kw.pop("params", None), items=kw.pop("items", ITEMS), **kw)


def raw(api):
    return api.http


def test_create_get_list_delete(api):
    s = create(api)
    assert s["name"] == "exp1" and s["num_items"] == 30 and s["categories"] == ["d0", "d1", "d2"]
    assert s["strategy"]["name"] == "sec" and s["strategy"]["params"]["alpha"] == 0.5
    assert set(s) >= {"name", "strategy", "group_size", "num_items", "categories", "policy_version", "events",
                      "created_at"}
    assert api.experiment("exp1")["num_items"] == 30
    assert [e["name"] for e in api.experiments()] == ["exp1"]
    r = raw(api).delete("/v1/experiments/exp1")
    assert r.status_code == 204
    with pytest.raises(ServiceError) as e:
        api.experiment("exp1")
    assert e.value.status == 404 and e.value.code == "not_found"


def test_create_errors_change_nothing(api):
    create(api)
    r = raw(api).post("/v1/experiments", json={"name": "exp1", "strategy": {"name": "sec"}, "items": ITEMS})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_exists"
    r = raw(api).post("/v1/experiments", json={"name": "x", "strategy": {"name": "nope"}, "items": ITEMS})
    assert r.status_code == 422 and "strategy.name" in r.json()["error"]["message"]
    r = raw(api).post("/v1/experiments", json={"name": "x", "strategy": {"name": "sec", "params": {"alpha": 7}}})
    assert r.status_code == 422 and "alpha" in r.json()["error"]["message"]
    r = raw(api).post("/v1/experiments", json={"name": "Bad Name", "strategy": {"name": "sec"}})
    assert r.status_code == 422 and "name" in r.json()["error"]["message"]
    r = raw(api).post("/v1/experiments", json={"name": "y", "strategy": {"name": "sec"}, "items": ITEMS,
                                                "source": {"kind": "arithmetic"}})
    assert r.status_code == 422 and "mutually exclusive" in r.json()["error"]["message"]
    r = raw(api).post("/v1/experiments", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = raw(api).post("/v1/experiments", json={"name": "z", "strategy": {"name": "sec"}, "items": ITEMS + ITEMS[:1]})
    assert r.status_code == 422 and "items[30].id" in r.json()["error"]["message"]
    assert [e["name"] for e in api.experiments()] == ["exp1"]


def test_lease_report_state_loop_and_duplicates(api):
    create(api, group_size=4)
    b = api.lease("exp1", 10, worker="w1")
    assert b["batch_id"] and b["policy_version"] == 0 and len(b["items"]) == 10
    assert all(it["num_samples"] == 4 and "max_tokens" not in it for it in b["items"])
    res = [{"item_id": it["id"], "rewards": [1, 0, 1, 0], "policy_version": 3, "rollout_id": f"r-{it['id']}"}
           for it in b["items"]]
    assert api.report("exp1", res, b["batch_id"]) == {"accepted": 10, "duplicates": 0}
    assert api.report("exp1", res[:4], b["batch_id"]) == {"accepted": 0, "duplicates": 4}
    st = api.state("exp1")
    assert st["events"] == 10 and st["policy_version"] == 3
    assert math.isclose(sum(a["weight"] for a in st["arms"]), 1.0, abs_tol=1e-9)
    assert {a["name"] for a in st["arms"]} == {"d0", "d1", "d2"}
    assert all(a["pass_rate"] in (None, 0.5) for a in st["arms"])
    assert st["details"]["duplicates"] == 4
    # the next lease reflects the reports: SEC's Q moved for the arms that were reported
    assert any(a["value"] > 0 for a in st["arms"])


@pytest.mark.parametrize("bad,where", [
    ('{"results": [{"item_id": "q1", "rewards": [1]}, {"item_id": "q2", "rewards": [NaN]}]}', "results.1.rewards"),
    ('{"results": [{"item_id": "q1", "rewards": []}]}', "results.0.rewards"),
    ('{"results": [{"item_id": "q1", "rewards": [1]}, {"item_id": "nope", "rewards": [1]}]}', "results[1].item_id"),
    ('{"results": []}', "results"),
    ('{"results": [{"item_id": "q1", "rewards": [1], "features": {"angle": NaN}}]}', "results.0.features"),
    ('{"results": [{"item_id": "q1", "rewards": [1], "features": {"angle": "x"}}]}', "a number or a list"),
    ('{"results": [{"item_id": "q1", "rewards": [1], "features": {"e": [1, 2]}}, '
     '{"item_id": "q2", "rewards": [1], "features": {"e": [1]}}]}', "results[1].features.e: 1 numbers"),
])
def test_bad_reports_reject_the_whole_request(api, bad, where):
    create(api)
    r = raw(api).post("/v1/experiments/exp1/rewards", content=bad, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert where in r.json()["error"]["message"]
    assert api.state("exp1")["events"] == 0  # nothing applied, not even the valid first entry


def test_leased_items_are_never_handed_out_twice_and_expire(api):
    create(api, strategy="uniform")
    a = api.lease("exp1", 20, lease_seconds=1.0)
    b = api.lease("exp1", 20, lease_seconds=60)
    ids_a, ids_b = {i["id"] for i in a["items"]}, {i["id"] for i in b["items"]}
    assert len(ids_a) == 20 and len(ids_b) == 10 and not ids_a & ids_b  # only 10 left
    assert api.lease("exp1", 5)["items"] == []
    time.sleep(1.2)  # a's leases expire unreported: those items come back
    c = api.lease("exp1", 30, lease_seconds=60)
    assert {i["id"] for i in c["items"]} == ids_a
    assert api.state("exp1")["details"]["leases_expired"] == 20
    # a report ends a lease, from any batch
    api.report("exp1", [{"item_id": next(iter(ids_b)), "rewards": [1, 0]}])
    assert [i["id"] for i in api.lease("exp1", 5)["items"]] == [next(iter(ids_b))]


def test_add_items_patch_strategies(api):
    create(api)
    assert api.add_items("exp1", ITEMS[:2] + [{"id": "new", "prompt": "p", "category": "d9"}]) == {
        "added": 1,
        "existing": 2,
    }
    s = api.experiment("exp1")
    assert s["num_items"] == 31 and "d9" in s["categories"]
    assert api.patch_strategy("exp1", {"tau": 0.25})["strategy"]["params"]["tau"] == 0.25
    r = raw(api).patch("/v1/experiments/exp1/strategy", json={"params": {"tau": -1}})
    assert r.status_code == 422 and "tau" in r.json()["error"]["message"]
    assert api.experiment("exp1")["strategy"]["params"]["tau"] == 0.25
    names = {s["name"] for s in api.strategies()}
    assert names >= {"uniform", "sec", "dump", "pcl", "posterior", "filter", "irt", "progress", "schedule", "compose"}
    assert all("properties" in s["params"] for s in api.strategies())


def test_not_found_and_method_errors(api):
    for method, path in [("GET", "/v1/experiments/none"), ("GET", "/v1/experiments/none/state"),
                         ("POST", "/v1/experiments/none/batches"), ("DELETE", "/v1/experiments/none")]:
        r = raw(api).request(method, path, json={"size": 1} if method == "POST" else None)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, path, r.text)


def test_request_size_limit(stack, api):
    body = b'{"items": [' + b",".join([b'{"id": "x", "prompt": "' + b"y" * 1000 + b'"}'] * 1500) + b"]}"
    r = httpx.post(f"{stack.url}/secured/v1/experiments/x/items", content=body,
                   headers={"Authorization": "Bearer s3cret", "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_operations_endpoints(api):
    create(api)
    api.lease("exp1", 3)
    assert raw(api).get("/healthz").json() == {"status": "ok"}
    assert raw(api).get("/readyz").status_code == 200
    m = raw(api).get("/metrics").text
    assert "curriculum_request_seconds_bucket" in m and 'curriculum_arm_weight{arm="d0",experiment="exp1"}' in m
    assert raw(api).get("/openapi.json").json()["info"]["title"] == "curriculum controller"
    assert raw(api).get("/docs").status_code == 200


def test_served_through_haproxy_when_it_is_installed(stack, api):
    """The local stack's default ingress (deploy.local.haproxy_ingress): HAProxy in front of replicas that serve
    HTTP themselves: HAProxy's config (one folder per Ray node) binds the stack's port and its metrics listener
    to the port picked for this process."""
    import os
    from pathlib import Path

    assert os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    cfgs = [p.read_text() for p in Path("/tmp/haproxy-serve").glob("*/haproxy.cfg")]
    ours = [c for c in cfgs if f"bind {stack.host}:{stack.port}" in c]
    assert any(f"bind :{os.environ['RAY_SERVE_HAPROXY_METRICS_PORT']}" in c for c in ours)
    assert api.healthz() == {"status": "ok"}


ROUTES = [("GET", "/v1/strategies", "read"), ("GET", "/v1/experiments", "read"), ("GET", "/v1/experiments/x", "read"),
          ("GET", "/v1/experiments/x/state", "read"), ("POST", "/v1/experiments/x/items", "worker"),
          ("POST", "/v1/experiments/x/batches", "worker"), ("POST", "/v1/experiments/x/rewards", "worker"),
          ("POST", "/v1/experiments", "admin"), ("DELETE", "/v1/experiments/x", "admin"),
          ("PATCH", "/v1/experiments/x/strategy", "admin")]
TOKENS = {"read": "r-tok", "worker": "w-tok", "admin": "s3cret"}  # the secured app of tests/services/conftest.py
RANK = ["read", "worker", "admin"]


@pytest.mark.parametrize("method, path, needs", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_auth_scopes_on_every_v1_route(stack, api, method, path, needs):
    """Every route x {no token, unknown token, malformed header, read, worker, admin}: 401 / 403 / through.
    Bodies are empty, so a request let through ends at validation (422) or 404 and changes nothing."""
    base = f"{stack.url}/secured"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                    {"Authorization": "Bearer s3cre"}, {"Authorization": "Bearer s3cret,r-tok"}):
        r = httpx.request(method, base + path, headers=headers, json={})
        assert r.status_code == 401, (method, path, headers)
        assert r.json()["error"]["code"] == "unauthorized"
    for scope, token in TOKENS.items():
        r = httpx.request(method, base + path, headers={"Authorization": f"Bearer {token}"}, json={})
        if RANK.index(scope) < RANK.index(needs):
            assert r.status_code == 403, (method, path, scope, r.text)
            err = r.json()["error"]
            assert err["code"] == "forbidden" and repr(needs) in err["message"]
        else:
            assert r.status_code not in (401, 403), (method, path, scope, r.text)
    assert api.experiments() == []  # nothing was created on the way


def test_scoped_tokens_work_end_to_end(stack, api):
    from services.client import CurriculumClient
    from services.errors import ServiceError

    base = f"{stack.url}/secured"
    with CurriculumClient(base, "s3cret", retries=0) as admin, CurriculumClient(base, "w-tok", retries=0) as worker, \
            CurriculumClient(base, "r-tok", retries=0) as reader:
        admin.create_experiment("scoped", "uniform", items=[{"id": "q1", "prompt": "1+1=", "answer": "2"}])
        b = worker.lease("scoped", 1)
        assert worker.report("scoped", [{"item_id": "q1", "rewards": [1.0]}], b["batch_id"])["accepted"] == 1
        assert reader.experiment("scoped")["events"] == 1
        with pytest.raises(ServiceError) as e:
            worker.delete_experiment("scoped")
        assert e.value.status == 403
        with pytest.raises(ServiceError) as e:
            reader.lease("scoped", 1)
        assert e.value.status == 403
        assert reader.state("scoped")["details"]["batches"] == 1  # the refused lease changed nothing
        admin.delete_experiment("scoped")
    assert httpx.get(base + "/healthz").status_code == 200  # operations stay open


def test_token_settings_from_env(monkeypatch):
    from services.settings import Settings

    monkeypatch.setenv("CURRICULUM_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CURRICULUM_API_TOKEN", "adm")
    monkeypatch.setenv("CURRICULUM_WORKER_TOKENS", "w1, w2,")
    monkeypatch.setenv("CURRICULUM_READ_TOKENS", "r1")
    s = Settings.from_env()
    assert s.scoped_tokens == {"r1": "read", "w1": "worker", "w2": "worker"}
    assert [s.scope_of(f"Bearer {t}".encode()) for t in ("r1", "w2", "adm", "nope")] == [0, 1, 2, None]
    with pytest.raises(RuntimeError, match="unknown scope"):
        Settings.from_env(scoped_tokens={"t": "root"})


def test_source_builds_the_pool(api):
    pytest.importorskip("curriculum.sources")
    s = api.create_experiment("arith", "uniform", source={"kind": "arithmetic", "min_digits": 1, "max_digits": 2,
                                                          "items_per_level": 5})
    assert s["num_items"] == 10 and len(s["categories"]) == 2
    r = raw(api).post("/v1/experiments", json={"name": "bad", "strategy": {"name": "sec"}, "source": {"kind": "nope"}})
    assert r.status_code == 422 and "source" in r.json()["error"]["message"]


def test_generator_source_makes_a_bounded_pool_and_state_shows_arm_configs(api):
    chain = {"kind": "chain", "max_horizon": 3, "per_arm": 4, "seed": 1}
    s = api.create_experiment("chains", "horizon", {"min_groups": 4, "window": 4}, source=chain)
    assert s["num_items"] == 12 and s["categories"] == ["h1", "h2", "h3"]
    b = api.lease("chains", 4)
    assert {it["category"] for it in b["items"]} == {"h1"} and all(it["metadata"]["verifier"] == "exact"
                                                                   for it in b["items"])
    api.report("chains", [{"item_id": it["id"], "rewards": [1, 1]} for it in b["items"]], b["batch_id"])
    b2 = api.lease("chains", 4)  # used items retired, the arm refilled on demand, the level moved up
    assert not {it["id"] for it in b2["items"]} & {it["id"] for it in b["items"]}
    st = api.state("chains")
    assert [a["config"]["horizon"] for a in st["arms"]] == [1, 2, 3]
    assert st["details"]["generator"]["retired"] == 4 and st["details"]["level_arm"] == "h2"
    for bad, field in [({**chain, "max_horizon": 0}, "max_horizon"), ({**chain, "per_arm": 2, "refill_below": 3},
                                                                       "refill_below"),
                       ({"kind": "rg_levels", "dataset": "basic_arithmetic", "attributes": ["x"]}, "attributes"),
                       ({"kind": "chain", "max_horizon": 20, "dataset": "count_bits"}, "max_positions")]:
        r = raw(api).post("/v1/experiments", json={"name": "bad", "strategy": {"name": "horizon"}, "source": bad})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_source", r.text
        assert field in r.json()["error"]["message"]
    assert [e["name"] for e in api.experiments()] == ["chains"]


def test_report_and_lease_in_one_call(api):
    create(api, strategy="uniform", group_size=2)
    b1 = api.lease("exp1", 10)
    res = [{"item_id": it["id"], "rewards": [1, 0], "rollout_id": f"r-{it['id']}"} for it in b1["items"]]
    b2 = api.next_batch("exp1", 25, res, b1["batch_id"])
    assert b2["reported"] == {"accepted": 10, "duplicates": 0}
    # the report ended b1's leases before the new lease was taken: all 30 items were eligible
    assert len(b2["items"]) == 25 and api.state("exp1")["events"] == 10
    assert api.next_batch("exp1", 1, res[:3])["reported"] == {"accepted": 0, "duplicates": 3}
    # a bad report rejects the whole call: no lease is taken, nothing is applied
    before = api.state("exp1")
    bad = [{"item_id": "q0", "rewards": [1, 1], "rollout_id": "new-1"}, {"item_id": "nope", "rewards": [1]}]
    with pytest.raises(ServiceError) as e:
        api.next_batch("exp1", 5, bad)
    assert e.value.status == 422 and "results[1].item_id" in e.value.message
    assert api.state("exp1") == before


def test_chunked_body_over_the_limit_is_413(stack, api):
    def chunks():
        for _ in range(40):
            yield b" " * 50_000  # 2 MB of whitespace, no content-length, against a 1 MiB limit

    r = httpx.post(f"{stack.url}/secured/v1/experiments/x/items", content=chunks(),
                   headers={"Authorization": "Bearer s3cret", "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    small = httpx.post(f"{stack.url}/secured/v1/experiments/x/items", content=iter([b'{"items": [', b"]}"]),
                       headers={"Authorization": "Bearer s3cret", "content-type": "application/json"})
    assert small.status_code == 422  # a small chunked body reaches validation (empty item list)


def test_owner_backpressure_is_429(api, redis_url, monkeypatch):
    import ray

    import services.router as ctl

    create(api, name="busy")
    ray.kill(ray.get_actor("owner:busy", namespace="curriculum"), no_restart=True)
    monkeypatch.setattr(ctl, "MAX_PENDING", 2)
    c = ctl.OwnerRouter(redis_url)  # this process restores the owner, with a queue of 2
    with pytest.raises(ServiceError) as e:
        [c.call_ref("busy", "summary") for _ in range(50)]
    assert e.value.status == 429 and e.value.code == "too_many_requests"


def test_reward_range_maps_rewards_and_rejects_out_of_range(api):
    s = api.create_experiment("pm1", "filter", items=ITEMS, group_size=4, reward_range=(-1, 1))
    assert s["reward_range"] == [-1, 1]
    b = api.lease("pm1", 3)
    ids = [it["id"] for it in b["items"]]
    # DAPO-style +-1 rewards: an all-wrong group is pass rate 0, one right in four is 0.25
    api.report("pm1", [{"item_id": ids[0], "rewards": [-1, -1, -1, -1], "policy_version": 0},
                       {"item_id": ids[1], "rewards": [1, -1, -1, -1], "policy_version": 0}], b["batch_id"])
    st = api.state("pm1")
    rates = {a["name"]: a["pass_rate"] for a in st["arms"] if a["pass_rate"] is not None}
    assert all(0 <= r <= 1 for r in rates.values()) and st["events"] == 2
    r = raw(api).post("/v1/experiments/pm1/rewards", json={"results": [
        {"item_id": ids[2], "rewards": [1, 0]}, {"item_id": ids[2], "rewards": [0.5, 1.5]}]})
    assert r.status_code == 422 and "results[1].rewards[1]" in r.json()["error"]["message"]
    assert "reward_range" in r.json()["error"]["message"]
    assert api.state("pm1")["events"] == 2  # nothing of the rejected request applied
    for bad in ("[1, 1]", "[0, Infinity]", "[2]"):
        body = f'{{"name": "pm2", "items": [{{"id": "a", "prompt": "p"}}], "reward_range": {bad}}}'
        r = raw(api).post("/v1/experiments", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "reward_range" in r.json()["error"]["message"], (bad, r.text)


def test_omitted_strategy_is_the_measured_default(api):
    from curriculum.registry import DEFAULT_STRATEGY

    r = raw(api).post("/v1/experiments", json={"name": "dflt", "items": ITEMS})
    assert r.status_code == 201, r.text
    assert r.json()["strategy"]["name"] == DEFAULT_STRATEGY["name"]
    assert api.create_experiment("dflt2", items=ITEMS)["strategy"]["name"] == DEFAULT_STRATEGY["name"]


def test_a_step_reported_by_four_workers_equals_one_report(api):
    """The same step's results in 1 call or in 4 (shuffled) give the same curriculum state."""
    results = [{"item_id": it["id"], "rewards": [1, 0, 0, 1] if k % 3 else [1, 1, 1, 0], "policy_version": 2}
               for k, it in enumerate(ITEMS[:24])]
    create(api, name="one", strategy="sec", group_size=4)
    create(api, name="four", strategy="sec", group_size=4)
    api.report("one", results)
    for part in (results[18:], results[:6], results[12:18], results[6:12]):
        api.report("four", part)
    a, b = api.state("one"), api.state("four")
    assert a["arms"] == b["arms"] and a["events"] == b["events"] == 24
    assert a["policy_version"] == b["policy_version"] == 2


def test_openapi_documents_the_features_field(api):
    schemas = raw(api).get("/openapi.json").json()["components"]["schemas"]
    f = schemas["RewardEvent"]["properties"]["features"]
    assert f["maxProperties"] == 8 and "angle" in f["description"] and "embedding" in f["description"]
    assert "features" not in schemas["RewardEvent"].get("required", [])  # additive: optional
