"""Redis dying under the service: 503 with the API's error body while it is down (never a 500 or a hang), the
local supervisor restarts it on the same data, the service and the workers' loops recover without a restart,
every acknowledged result is in the recovered state and none is applied twice."""
from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest
import ray

from services.client import CurriculumClient
from services.redis_server import LocalRedis
from services.store import ExperimentStore
from tests.services.test_faults import fresh_replay

ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 4}", "answer": str(i + 1)} for i in range(64)]


@pytest.fixture(params=["everysec", "always"])
def supervised(request, stack, api, tmp_path):
    """A supervised Redis of its own and an app on it (/rf-<mode>), beside the session's stack."""
    from ray import serve

    from services.app import build_app

    srv = LocalRedis(tmp_path / "redis", appendfsync=request.param, supervise=True).start()
    name = f"rf-{request.param}"
    # no snapshots: the log keeps every record, so the test can list what was applied
    serve.run(build_app(srv.url, snapshot_every=10**9, snapshot_seconds=1e9), name=name, route_prefix=f"/{name}")
    yield srv, f"{stack.url}/{name}", request.param
    serve.delete(name)
    for a in ray.util.list_named_actors(all_namespaces=True):
        if a["name"].startswith("owner:rk"):
            ray.kill(ray.get_actor(a["name"], namespace=a["namespace"]), no_restart=True)
    srv.stop()


def test_redis_down_answers_503_in_the_apis_shape_then_recovers(supervised):
    srv, base, _ = supervised
    with CurriculumClient(base, retries=0) as c:
        c.create_experiment("rk-down", "uniform", items=ITEMS)
        b = c.lease("rk-down", 4)
        srv.supervise = False  # keep it down for the checks
        srv._stopping.set()
        srv._supervisor.join()
        srv.proc.kill()
        srv.proc.wait()
        for method, path, body in [("POST", "/v1/experiments/rk-down/rewards",
                                    {"results": [{"item_id": b["items"][0]["id"], "rewards": [1]}]}),
                                   ("POST", "/v1/experiments/rk-down/batches", {"size": 2}),
                                   ("GET", "/v1/experiments/rk-down/state", None),
                                   ("GET", "/v1/experiments", None),
                                   ("POST", "/v1/experiments", {"name": "rk-new", "items": ITEMS[:2]})]:
            t0 = time.monotonic()
            r = httpx.request(method, base + path, json=body, timeout=20)
            assert r.status_code == 503, (method, path, r.status_code, r.text)
            assert r.json()["error"]["code"] == "redis_unavailable", r.text
            assert time.monotonic() - t0 < 10
        assert httpx.get(base + "/readyz").status_code == 503
        srv.start()  # the same port and data
        c.retries = 6
        ack = c.report("rk-down", [{"item_id": b["items"][0]["id"], "rewards": [1], "rollout_id": "after"}])
        assert ack == {"accepted": 1, "duplicates": 0}
        assert c.state("rk-down")["details"]["batches"] == 1  # the refused lease changed nothing
        assert "rk-new" not in [e["name"] for e in c.experiments()]


def test_redis_killed_under_load_loses_no_acknowledged_result(supervised):
    srv, base, mode = supervised
    with CurriculumClient(base, retries=8) as c:
        c.create_experiment("rk-load", "sec", items=ITEMS)
    acked: set[str] = set()
    results: dict[str, dict] = {}
    errors: list[BaseException] = []
    stop = threading.Event()
    lock = threading.Lock()

    def worker(w: int) -> None:
        try:
            with CurriculumClient(base, retries=8, backoff=0.1, timeout=30) as c:  # ~50 s of retries
                k = 0
                while not stop.is_set():
                    b = c.lease("rk-load", 4, worker=f"w{w}", lease_seconds=600)
                    res = [{"item_id": it["id"], "rewards": [k % 2, 1], "rollout_id": f"w{w}-{k}-{it['id']}"}
                           for it in b["items"]]
                    ack = c.report("rk-load", res, b["batch_id"])
                    assert ack["accepted"] + ack["duplicates"] == len(res)
                    with lock:
                        acked.update(r["rollout_id"] for r in res)
                        results.update((r["rollout_id"], r) for r in res)
                    k += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(4)
    before_kill = len(acked)
    os.kill(srv.proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while srv.restarts < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert srv.restarts == 1  # the supervisor brought it back
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join(120)
    assert not errors, errors  # the loops went on through the outage (client retries, 503s)
    assert len(acked) > before_kill > 0

    with CurriculumClient(base, retries=8) as c:
        live = c.state("rk-load")
        # the owner's memory equals the log (it rebuilt itself after the connection error)
        replayed = fresh_replay(srv.url, "rk-load").describe()
        assert {k: replayed[k] for k in live} == live
        applied = [r["rollout_id"] for _, rec in ExperimentStore(srv.url).records("rk-load")
                   if rec["op"] == "report" for r in rec["results"]]
        lost = acked - set(applied)
        print(f"\nappendfsync={mode}: {len(acked)} acknowledged, {len(lost)} lost after kill -9 of redis-server")
        assert live["events"] == len(set(applied))  # each applied once
        # a resend of everything acknowledged: what survived is a duplicate, only what was lost applies
        ack = c.report("rk-load", [results[r] for r in sorted(acked)])
        assert ack == {"accepted": len(lost), "duplicates": len(acked) - len(lost)}
        if mode == "always":
            assert not lost


def test_crash_window_exposure_on_hand_made_syscall_times():
    """benchmarks/durability.py's machine-crash window on synthetic times (no Redis): a result is at risk from
    its acknowledgement until an fsync that started after its AOF write() has ended."""
    from benchmarks.durability import aof_syscalls, exposure

    fsyncs = [(1.0, 1.1), (2.0, 2.05), (3.0, 3.2)]
    acks = [(1.5, 0.9, 8),   # fsync 1.0-1.1 covers it before the ack: never at risk
            (1.1, 0.95, 1),  # acknowledged the instant that fsync ended: never at risk (what `always` shows)
            (1.2, 1.05, 8),  # written during the first fsync: the next one, until 2.05 -> 0.85 s
            (1.8, 1.7, 4),   # until 2.05 -> 0.25 s; 8 + 4 at risk at 1.8, acknowledged over 1.2..1.8
            (2.5, 2.4, 8),   # until 3.2 -> 0.7 s
            (3.5, 3.3, 2)]   # no fsync after it in the trace
    w = exposure(acks, fsyncs)
    assert (w["acknowledged"], w["exposed"], w["never_fsynced"]) == (31, 22, 2)
    assert w["max_at_risk"] == 12 and w["max_at_risk_span_s"] == pytest.approx(0.6)
    # 29 finite exposures: 9 x 0, 4 x 0.25, 8 x 0.7, 8 x 0.85
    assert w["exposure_p50_s"] == pytest.approx(0.7) and w["exposure_max_s"] == pytest.approx(0.85)
    assert w["fsyncs"] == 2 and w["fsync_gap_max_s"] == pytest.approx(1.0)  # only 2.0 and 3.0 fall under load

    trace = ['7 10.000000 openat(AT_FDCWD, "appendonlydir/appendonly.aof.1.incr.aof", O_WRONLY|O_APPEND) = 5 <0.1>',
             '7 10.500000 write(5, "*3\\r\\n$3\\r\\nset"..., 30) = 30 <0.000010>',
             '9 11.000000 fdatasync(5 <unfinished ...>',
             '7 11.100000 write(5, "*3"..., 20) = 20 <0.000010>',
             '9 11.200000 <... fdatasync resumed>) = 0 <0.200000>',
             '7 12.000000 close(5) = 0 <0.000001>',
             '7 12.100000 write(5, "+OK\\r\\n", 5) = 5 <0.000001>']  # fd 5 reused: not the AOF any more
    writes, syncs = aof_syscalls(trace)
    assert [(t, size) for t, _, _, size in writes] == [(10.5, 30), (11.1, 50)]
    assert syncs == [(11.0, pytest.approx(11.2))]
