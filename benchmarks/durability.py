"""Durability modes of the embedded Redis, in one run: `everysec` (the default) and `always` (strict: fsync
before every acknowledgement). For each, a fresh local stack:

1. cost: the controller benchmark's REST loops (benchmarks/controller.py: lease 64 + report 64 x 8, two calls
   and one call), p50/p99;
2. loss window under a crash: REST workers lease and report while redis-server is SIGKILLed `--kills` times
   (the stack's supervisor restarts it on the same AOF); afterwards every acknowledged result is resent:
   one that comes back `accepted` had been lost (a survivor is a duplicate), so lost = accepted on resend.

A SIGKILL of the process keeps what Redis already write()-ed to the AOF (the kernel holds it); what `everysec`
risks beyond that is the last second not yet fsync-ed when the machine itself dies, which a process kill cannot
produce: both numbers are reported as measured.

    .venv/bin/python benchmarks/durability.py [--loops 200] [--kills 5] [--workers 8]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from controller import loop, loop_one_call, stats  # noqa: E402 (the controller benchmark's own loops)


def kill_test(stack, name: str, items: list[dict], kills: int, workers: int, gap: float) -> dict:
    from services.client import CurriculumClient

    acked: dict[str, dict] = {}
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def work(w: int) -> None:
        with CurriculumClient(stack.url, retries=10, backoff=0.1, timeout=30) as c:
            k = 0
            while not stop.is_set():
                try:
                    b = c.lease(name, 8, worker=f"w{w}", lease_seconds=600)
                    res = [{"item_id": it["id"], "rewards": [k & 1, 1], "rollout_id": f"w{w}-{k}-{j}"}
                           for j, it in enumerate(b["items"])]
                    c.report(name, res, b["batch_id"])
                    with lock:
                        acked.update((r["rollout_id"], r) for r in res)
                except Exception as e:  # noqa: BLE001 - counted
                    errors.append(f"{type(e).__name__}: {e}")
                k += 1

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    outage = []
    for _ in range(kills):
        time.sleep(gap)
        n = stack.redis.restarts
        t0 = time.monotonic()
        os.kill(stack.redis.proc.pid, signal.SIGKILL)
        while stack.redis.restarts == n:
            time.sleep(0.01)
        outage.append(time.monotonic() - t0)
    time.sleep(gap)
    stop.set()
    for t in threads:
        t.join()
    with CurriculumClient(stack.url, retries=10) as c:
        rids = sorted(acked)
        lost = 0
        for i in range(0, len(rids), 1000):
            lost += c.report(name, [acked[r] for r in rids[i:i + 1000]])["accepted"]
    return {"kills": kills, "acknowledged": len(acked), "lost": lost, "errors": len(errors),
            "error_examples": errors[:3], "redis_restart_s": outage}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", type=int, default=200)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--gap", type=float, default=3.0, help="seconds of load before each kill")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "durability.json"))
    args = ap.parse_args(argv)

    from deploy.local import LocalStack
    from services.client import CurriculumClient
    from services.redis_server import free_port

    items = [{"id": f"q{i}", "prompt": f"{i}+{i % 7}=", "category": f"d{i % 8}"} for i in range(10_000)]
    out: dict = {"loops": args.loops, "cpus": os.cpu_count()}
    for mode in ("everysec", "always"):
        stack = LocalStack(Path(tempfile.mkdtemp(prefix=f"dur-{mode}-")), port=free_port(), redis_fsync=mode).start()
        try:
            with CurriculumClient(stack.url) as http:
                http.create_experiment("bench", "sec", items=items)
                res = {}
                for key, fn in (("rest", loop), ("rest_one_call", loop_one_call)):
                    fn(http, "bench", 20, f"warm-{key}")
                    res[key] = stats(fn(http, "bench", args.loops, key))
                http.create_experiment("kill", "sec", items=items[:1000])
            res["kill"] = kill_test(stack, "kill", items, args.kills, args.workers, args.gap)
            out[mode] = res
            print(mode, json.dumps(res), flush=True)
        finally:
            stack.stop()
    out["load_avg_1m"] = os.getloadavg()[0]
    print(f"\nRedis durability modes, local stack, {os.cpu_count()} cores (shared machine, load {out['load_avg_1m']:.1f}):\n")
    print("| appendfsync | REST 2 calls p50 / p99 ms | REST 1 call p50 / p99 ms | kill -9 of redis-server | "
          "acknowledged results | lost | client errors |\n|---|---:|---:|---:|---:|---:|---:|")
    for mode in ("everysec", "always"):
        r = out[mode]
        print(f"| {mode} | {r['rest']['p50_ms']:.1f} / {r['rest']['p99_ms']:.1f} | {r['rest_one_call']['p50_ms']:.1f} / "
              f"{r['rest_one_call']['p99_ms']:.1f} | {r['kill']['kills']} | {r['kill']['acknowledged']:,} | "
              f"{r['kill']['lost']} | {r['kill']['errors']} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")
    return out


if __name__ == "__main__":
    main()
