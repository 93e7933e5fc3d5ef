"""Soak: N REST workers (separate processes) across E experiments, each looping lease -> report (one call,
`next_batch`) as fast as it can for a set time, against a local stack (Ray + Serve + supervised Redis). Midway
an owner actor is killed (Ray restarts it from Redis) and a worker process is SIGKILLed (its lease expires; a
new worker takes its place). Prints and writes: total events, errors (must be 0), p50/p99 latency per time
bucket, owner and Redis memory at the start and the end, and a plot.

    .venv/bin/python benchmarks/soak.py [--duration 600] [--workers 16] [--experiments 4]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import signal
import tempfile
import time
from pathlib import Path

import numpy as np

BATCH, GROUP = 16, 8
VERSION_SECONDS = 5.0  # every worker reports policy_version = seconds since start // this (a trainer's steps)


def worker(url: str, experiment: str, wid: str, t0: float, until: float, out) -> None:
    """One rollout loop; every answered call -> (t, latency, events acknowledged, error or None) on `out`."""
    from services.client import CurriculumClient

    rng = np.random.default_rng(abs(hash(wid)) % 2**32)
    with CurriculumClient(url, retries=8, backoff=0.1, timeout=60) as c:
        batch, k = None, 0
        while time.time() < until:
            results = None
            if batch is not None:
                v = int((time.time() - t0) // VERSION_SECONDS)
                results = [{"item_id": it["id"], "rewards": rng.integers(0, 2, GROUP).tolist(), "policy_version": v,
                            "rollout_id": f"{wid}-{k}-{j}"} for j, it in enumerate(batch["items"])]
            s = time.perf_counter()
            try:
                batch = c.next_batch(experiment, BATCH, results, batch and batch["batch_id"], worker=wid,
                                     lease_seconds=30)
                n = batch["reported"]["accepted"] + batch["reported"]["duplicates"] if results else 0
                out.put((time.time(), time.perf_counter() - s, n, None, experiment))
            except Exception as e:  # noqa: BLE001 - counted, must stay 0
                out.put((time.time(), time.perf_counter() - s, 0, f"{type(e).__name__}: {e}", experiment))
                batch = None
            k += 1


def rss_mb(pids: list[int]) -> float:
    import psutil

    total = 0
    for p in pids:
        try:
            total += psutil.Process(p).memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def owner_pids(stack_id: str) -> list[int]:
    """This stack's owner actors only (other stacks on a shared machine run owners too)."""
    import psutil

    from deploy import reaper

    ours = set(reaper.stacks().get(stack_id, [])) | set(reaper.descendants(reaper.marked(stack_id)))
    out = []
    for pid in ours:
        try:
            if psutil.Process(pid).name().startswith("ray::ExperimentOw"):
                out.append(pid)
        except psutil.Error:
            pass
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--experiments", type=int, default=4)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--bucket", type=float, default=0, help="seconds per latency bucket (default: duration / 20)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "soak.json"))
    args = ap.parse_args(argv)
    args.bucket = args.bucket or max(args.duration / 20, 1.0)
    return args


class Soak:
    """One soak run against a started stack: worker processes, memory samples, the two faults, the answers."""

    def __init__(self, stack, args: argparse.Namespace) -> None:
        import redis

        self.stack, self.args = stack, args
        self.ctx = mp.get_context("spawn")
        self.out = self.ctx.Queue()
        self.names = [f"soak-{e}" for e in range(args.experiments)]
        self.samples, self.rows, self.faults = [], [], []
        self.procs: dict[str, tuple] = {}
        self.r = redis.Redis.from_url(stack.redis_url)
        self.t0 = self.until = 0.0

    def create_experiments(self) -> None:
        from services.client import CurriculumClient

        with CurriculumClient(self.stack.url) as c:
            for n in self.names:
                c.create_experiment(n, "sec", items=[{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 8}"}
                                                     for i in range(self.args.items)])

    def sample(self, tag: str) -> None:
        pids = owner_pids(self.stack.stack_id)
        self.samples.append({"t": time.time() - self.t0, "tag": tag, "owner_rss_mb": rss_mb(pids),
                             "owners": len(pids), "redis_rss_mb": rss_mb([self.stack.redis.proc.pid]),
                             "redis_used_mb": self.r.info("memory")["used_memory"] / 2**20})

    def spawn(self, w: int) -> None:
        wid = f"w{w}-{len(self.procs)}"
        p = self.ctx.Process(target=worker, args=(self.stack.url, self.names[w % len(self.names)], wid, self.t0,
                                                  self.until, self.out), daemon=True)
        p.start()
        self.procs[wid] = (w, p)

    def inject(self, what: str) -> None:
        """Kill the first experiment's owner (Ray restarts it from Redis), or SIGKILL a worker and replace it."""
        import ray

        from services.keys import NAMESPACE, owner_name

        if what == "kill_owner":
            ray.kill(ray.get_actor(owner_name(self.names[0]), namespace=NAMESPACE), no_restart=False)
        else:
            wid, (w, p) = next(iter(self.procs.items()))
            os.kill(p.pid, signal.SIGKILL)
            self.spawn(w)
        self.faults.append({"t": time.time() - self.t0, "fault": what})

    def drain(self, timeout: float) -> bool:
        try:
            self.rows.append(self.out.get(timeout=timeout))
            return True
        except queue.Empty:
            return False

    def run(self) -> dict[str, int]:
        """Workers loop until the duration ends; returns each experiment's events in state."""
        from services.client import CurriculumClient

        args = self.args
        self.create_experiments()
        self.t0 = time.time()
        self.until = self.t0 + args.duration
        for w in range(args.workers):
            self.spawn(w)
        self.sample("start")
        plan = [(args.duration / 3, "kill_owner"), (args.duration / 2, "kill_worker")]
        next_sample = self.t0 + args.bucket
        while time.time() < self.until or any(p.is_alive() for _, p in self.procs.values()):
            self.drain(0.5)
            now = time.time()
            if plan and now - self.t0 >= plan[0][0]:
                self.inject(plan.pop(0)[1])
            if now >= next_sample:
                self.sample("run")
                next_sample += args.bucket
        while self.drain(1):
            pass
        self.sample("end")
        with CurriculumClient(self.stack.url) as c:
            return {n: c.experiment(n)["events"] for n in self.names}


def summarise(soak: Soak, state_events: dict[str, int]) -> dict:
    args, rows, samples = soak.args, soak.rows, soak.samples
    t = np.array([x[0] - soak.t0 for x in rows])
    lat = np.array([x[1] for x in rows]) * 1000
    errors = [x[3] for x in rows if x[3]]
    acked = sum(x[2] for x in rows)
    buckets = []
    for b in range(int(np.ceil(args.duration / args.bucket))):
        m = (t >= b * args.bucket) & (t < (b + 1) * args.bucket)
        if m.any():
            buckets.append({"t": (b + 0.5) * args.bucket, "calls": int(m.sum()),
                            "p50_ms": float(np.percentile(lat[m], 50)), "p99_ms": float(np.percentile(lat[m], 99))})
    warm = [s for s in samples if s["t"] >= args.duration / 5] or samples
    return {"duration_s": args.duration, "workers": args.workers, "experiments": args.experiments, "batch": BATCH,
            "group_size": GROUP, "items_per_experiment": args.items, "calls": len(rows),
            "events_acknowledged": int(acked), "events_in_state": int(sum(state_events.values())),
            "events_per_s": acked / args.duration, "errors": len(errors), "error_examples": errors[:5],
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)), "buckets": buckets,
            "faults": soak.faults, "memory": samples,
            "memory_warm_start_end": {k: [warm[0][k], samples[-1][k]]
                                      for k in ("owner_rss_mb", "redis_rss_mb", "redis_used_mb")},
            "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}


def print_report(res: dict) -> None:
    print(f"\nSoak: {res['workers']} REST workers x {res['experiments']} experiments, {res['duration_s']:.0f} s, "
          f"batch {BATCH} x {GROUP}, {os.cpu_count()} cores (shared machine, load {res['load_avg_1m']:.1f})\n")
    print(f"calls {res['calls']:,}  events acknowledged {res['events_acknowledged']:,} ({res['events_per_s']:,.0f}/s)"
          f"  in state {res['events_in_state']:,}  errors {res['errors']}  p50 {res['p50_ms']:.1f} ms  "
          f"p99 {res['p99_ms']:.1f} ms")
    print("faults: " + ", ".join(f"{f['fault']} at {f['t']:.0f} s" for f in res["faults"]))
    print("\n| t s | calls | p50 ms | p99 ms |\n|---:|---:|---:|---:|")
    for b in res["buckets"]:
        print(f"| {b['t']:.1f} | {b['calls']} | {b['p50_ms']:.1f} | {b['p99_ms']:.1f} |")
    print("\n| memory MB | warm start | end |\n|---|---:|---:|")
    for k, (a, b) in res["memory_warm_start_end"].items():
        print(f"| {k} | {a:.1f} | {b:.1f} |")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from deploy.local import LocalStack
    from services.redis_server import free_port

    stack = LocalStack(Path(tempfile.mkdtemp(prefix="soak-")), port=free_port()).start()
    soak = Soak(stack, args)
    try:
        state_events = soak.run()
    finally:
        stack.stop()
    res = summarise(soak, state_events)
    print_report(res)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    plot(res, Path(args.out).with_suffix(".png"))
    print(f"\nwrote {args.out}")
    return res


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6))
    t = [x["t"] for x in res["buckets"]]
    a.plot(t, [x["p50_ms"] for x in res["buckets"]], label="p50")
    a.plot(t, [x["p99_ms"] for x in res["buckets"]], label="p99")
    for f in res["faults"]:
        a.axvline(f["t"], color="grey", ls=":")
        a.text(f["t"], a.get_ylim()[1] * 0.9, f["fault"].replace("_", " "), fontsize=7, rotation=90)
    a.set(xlabel="s", ylabel="ms per lease+report call", title="REST latency over time")
    a.legend()
    m = res["memory"]
    for k in ("owner_rss_mb", "redis_used_mb"):
        b.plot([x["t"] for x in m], [x[k] for x in m], label=k)
    b.set(xlabel="s", ylabel="MB", title="owner RSS (all owners), Redis used memory")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
