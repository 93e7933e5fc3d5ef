"""Durability modes of the embedded Redis, in one run: `everysec` (the default) and `always` (strict: fsync
before every acknowledgement). For each, a fresh local stack:

1. cost: the controller benchmark's REST loops (benchmarks/controller.py: lease 64 + report 64 x 8, two calls
   and one call), p50/p99;
2. loss window under a crash: REST workers lease and report while redis-server is SIGKILLed `--kills` times
   (the stack's supervisor restarts it on the same AOF); afterwards every acknowledged result is resent:
   one that comes back `accepted` had been lost (a survivor is a duplicate), so lost = accepted on resend;
3. the window of a machine crash (power, kernel panic, node loss), on another fresh stack whose redis-server
   runs under strace: REST workers lease and report for `--window-seconds`; every acknowledgement's record is
   found in the AOF, hence the write() that held it, hence the first fsync after that write; from the
   acknowledgement until that fsync ended the result was acknowledged but not on disk (`crash_window`).

A SIGKILL of the process keeps what Redis already write()-ed to the AOF (the kernel holds it), so 2. loses
nothing in either mode; what `everysec` risks beyond that is what the kernel had not yet fsync-ed when the machine
itself dies, which a process kill cannot produce: 3. measures it from the syscalls instead (strace slows Redis,
so 3.'s rates are lower than 2.'s).

    .venv/bin/python benchmarks/durability.py [--loops 200] [--kills 5] [--workers 8] [--window-seconds 20]
"""
from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from controller import loop, loop_one_call, stats  # noqa: E402 (the controller benchmark's own loops)


class Workers:
    """`n` REST workers leasing 8 items and reporting them until stop(); `acked` holds every acknowledged result
    by rollout_id, `acks` (time.time() when the acknowledgement arrived, its rollout_ids) every acknowledgement."""

    def __init__(self, url: str, name: str, n: int) -> None:
        self.acked: dict[str, dict] = {}
        self.acks: list[tuple[float, list[str]]] = []
        self.errors: list[str] = []
        self._stop, self._lock = threading.Event(), threading.Lock()
        self._threads = [threading.Thread(target=self._work, args=(url, name, w)) for w in range(n)]
        for t in self._threads:
            t.start()

    def _work(self, url: str, name: str, w: int) -> None:
        from services.client import CurriculumClient

        with CurriculumClient(url, retries=10, backoff=0.1, timeout=30) as c:
            k = 0
            while not self._stop.is_set():
                try:
                    b = c.lease(name, 8, worker=f"w{w}", lease_seconds=600)
                    res = [{"item_id": it["id"], "rewards": [k & 1, 1], "rollout_id": f"w{w}-{k}-{j}"}
                           for j, it in enumerate(b["items"])]
                    c.report(name, res, b["batch_id"])
                    t = time.time()  # strace -ttt's clock
                    with self._lock:
                        self.acked.update((r["rollout_id"], r) for r in res)
                        self.acks.append((t, [r["rollout_id"] for r in res]))
                except Exception as e:  # noqa: BLE001 - counted
                    self.errors.append(f"{type(e).__name__}: {e}")
                k += 1

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def kill_test(stack, name: str, kills: int, workers: int, gap: float) -> dict:
    from services.client import CurriculumClient

    load = Workers(stack.url, name, workers)
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
    load.stop()
    with CurriculumClient(stack.url, retries=10) as c:
        rids = sorted(load.acked)
        lost = 0
        for i in range(0, len(rids), 1000):
            lost += c.report(name, [load.acked[r] for r in rids[i:i + 1000]])["accepted"]
    return {"kills": kills, "acknowledged": len(load.acked), "lost": lost, "errors": len(load.errors),
            "error_examples": load.errors[:3], "redis_restart_s": outage}


# Only the traced calls stop redis-server (seccomp-bpf); -f follows the background thread that fsyncs in everysec
# mode; -ttt: time.time()'s clock; -T: each call's duration, so an fsync's end is known.
STRACE = ["strace", "-f", "--seccomp-bpf", "-ttt", "-T", "-e", "trace=write,fsync,fdatasync,openat,close", "-o"]
_LINE = re.compile(r"(\d+)\s+(\d+\.\d+)\s+(.*)")
_CALL = re.compile(r"(\w+)\((\w+)(.*)= (-?\d+)[^<=]*<([\d.]+)>$")


def aof_syscalls(lines) -> tuple[list[tuple[float, float, str, int]], list[tuple[float, float]]]:
    """From an `STRACE` log: the AOF write()s (start, end, file, the file's size after it) and the fsyncs of
    AOF files (start, end). AOF = Redis 7's `appendonlydir/*.incr.aof`, the part that takes new writes; its
    fds are followed through openat/close because fd numbers are reused."""
    pending: dict[str, tuple[float, str]] = {}  # a call another thread interrupted: "<unfinished ...>"
    fds: dict[str, str] = {}
    size: dict[str, int] = {}
    writes, fsyncs = [], []
    for line in lines:
        m = _LINE.match(line.rstrip("\n"))
        if not m:
            continue
        pid, t, rest = m[1], float(m[2]), m[3]
        if rest.endswith("<unfinished ...>"):
            pending[pid] = (t, rest[:-len("<unfinished ...>")])
            continue
        if rest.startswith("<... ") and pid in pending:
            t, head = pending.pop(pid)
            rest = head + rest.split("resumed>", 1)[1]
        c = _CALL.match(rest)
        if not c:
            continue
        call, fd, args, ret, dur = c[1], c[2], c[3], int(c[4]), float(c[5])
        if call == "openat" and ret >= 0:
            path = re.search(r'"([^"]*)"', args)[1]
            if "appendonlydir/" in path and path.endswith(".incr.aof"):
                fds[str(ret)] = path
                size.setdefault(path, 0)
            else:
                fds.pop(str(ret), None)
        elif call == "close":
            fds.pop(fd, None)
        elif fd in fds and call == "write" and ret > 0:
            size[fds[fd]] += ret
            writes.append((t, t + dur, fds[fd], size[fds[fd]]))
        elif fd in fds and call in ("fsync", "fdatasync"):
            fsyncs.append((t, t + dur))
    return writes, fsyncs


def exposure(acks: list[tuple[float, float, int]], fsyncs: list[tuple[float, float]]) -> dict:
    """acks: (time the acknowledgement arrived, end of the AOF write() that held its record, results in it);
    fsyncs: (start, end) of the AOF fsyncs; one clock. A result is on disk once an fsync that *started after*
    its write returned has ended; from its acknowledgement until then a machine crash loses it. Returns the
    most results at risk at any instant, over how many seconds of acknowledgements, exposures, fsync gaps."""
    starts = [s for s, _ in fsyncs]
    spans = []  # (acknowledged, durable, results); durable = inf: no fsync followed in the trace
    for t_ack, t_written, n in acks:
        j = bisect.bisect_right(starts, t_written)
        spans.append((t_ack, max(t_ack, fsyncs[j][1]) if j < len(fsyncs) else math.inf, n))
    # sweep: +n at an acknowledgement, -n when it is durable; at one instant the -n first (durable by then)
    events = sorted([(a, n) for a, d, n in spans if d > a] + [(d, -n) for a, d, n in spans if d > a])
    at_risk = worst = 0
    worst_t = None
    for t, dn in events:
        at_risk += dn
        if at_risk > worst:
            worst, worst_t = at_risk, t
    exposed = sorted(e for a, d, n in spans if d < math.inf for e in [d - a] * n)
    t0, t1 = (min(a for a, _, _ in spans), max(a for a, _, _ in spans)) if spans else (0.0, 0.0)
    loaded = [s for s in starts if t0 <= s <= t1]  # an idle Redis does not fsync: gaps under load only
    gaps = sorted(b - a for a, b in zip(loaded, loaded[1:]))
    results = sum(n for _, _, n in spans)
    return {
        "acknowledged": results, "acks": len(spans),
        "results_per_s": results / (t1 - t0) if t1 > t0 else 0.0,
        "exposed": sum(n for a, d, n in spans if d > a),
        "never_fsynced": sum(n for a, d, n in spans if d == math.inf),
        "max_at_risk": worst,
        "max_at_risk_span_s": worst_t - min(a for a, d, _ in spans if a <= worst_t < d) if worst else 0.0,
        "exposure_p50_s": _pct(exposed, 50), "exposure_max_s": exposed[-1] if exposed else 0.0,
        "fsyncs": len(loaded),
        "fsync_gap_p50_s": _pct(gaps, 50), "fsync_gap_max_s": gaps[-1] if gaps else 0.0,
    }


def _pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(len(xs) * q / 100))] if xs else 0.0


def crash_window(mode: str, items: list[dict], workers: int, seconds: float) -> dict:
    """Workers lease and report for `seconds` on a fresh stack whose redis-server runs under strace; then every
    acknowledgement is matched to the AOF write() that held its record and to the fsync that made it durable."""
    from deploy.local import LocalStack
    from services.client import CurriculumClient
    from services.redis_server import free_port

    d = Path(tempfile.mkdtemp(prefix=f"dur-trace-{mode}-"))
    trace = d / "redis.strace"
    stack = LocalStack(d, port=free_port(), redis_fsync=mode, redis_wrapper=[*STRACE, str(trace)]).start()
    try:
        with CurriculumClient(stack.url) as http:
            http.create_experiment("window", "sec", items=items[:1000])
        load = Workers(stack.url, "window", workers)
        time.sleep(seconds)
        load.stop()
    finally:
        stack.stop()  # redis-server exits, and strace with it: the trace is complete
    with trace.open() as f:
        writes, fsyncs = aof_syscalls(f)
    acks, located = written_by(load.acks, writes, d / "redis" / "appendonlydir")
    return {**exposure(acks, fsyncs), "seconds": seconds, "aof_writes": len(writes), "located_in_aof": located,
            "errors": len(load.errors), "error_examples": load.errors[:3]}


def written_by(acks: list[tuple[float, list[str]]], writes: list[tuple[float, float, str, int]],
               aof_dir: Path) -> tuple[list[tuple[float, float, int]], int]:
    """(ack time, end of the write() that held the record, results) per acknowledgement. The record (JSON in the
    XADD) is found in the AOF by its last rollout_id: the write whose byte range holds it. Not found (a part
    removed by a rewrite): the last AOF write that started before the acknowledgement, which wrote the record or
    came after it (conservative). The last write before the ack alone would blame another client's write
    landing between the record's fsync and the ack, so `always` could look exposed for an fsync's duration."""
    at: dict[str, tuple[str, int]] = {}  # rollout_id -> (AOF part, offset)
    for part in {p for _, _, p, _ in writes}:
        data = (aof_dir / Path(part).name).read_bytes() if (aof_dir / Path(part).name).exists() else b""
        at.update((m[1].decode(), (part, m.end())) for m in re.finditer(rb'"rollout_id":"(w\d+-\d+-\d+)"', data))
    by_part: dict[str, list[tuple[int, float]]] = {}
    for _, end, part, size in writes:
        by_part.setdefault(part, []).append((size, end))
    starts = [s for s, _, _, _ in writes]
    out, located = [], 0
    for t, rids in acks:
        part, off = at.get(rids[-1], ("", 0))
        sizes = by_part.get(part, [])
        k = bisect.bisect_left(sizes, (off, -math.inf))  # the first write that reached `off`
        if k < len(sizes):
            written = sizes[k][1]
            located += 1
        else:
            i = bisect.bisect_left(starts, t) - 1
            written = writes[i][1] if i >= 0 else t
        out.append((t, written, len(rids)))
    return out, located


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", type=int, default=200)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--gap", type=float, default=3.0, help="seconds of load before each kill")
    ap.add_argument("--window-seconds", type=float, default=20.0, help="seconds of load under strace, per mode")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "durability.json"))
    args = ap.parse_args(argv)

    from deploy.local import LocalStack
    from services.client import CurriculumClient
    from services.redis_server import free_port

    items = [{"id": f"q{i}", "prompt": f"{i}+{i % 7}=", "category": f"d{i % 8}"} for i in range(10_000)]
    out: dict = {"loops": args.loops, "cpus": os.cpu_count(), "window_seconds": args.window_seconds,
                 "load_avg_1m_start": os.getloadavg()[0]}
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
            res["kill"] = kill_test(stack, "kill", args.kills, args.workers, args.gap)
        finally:
            stack.stop()
        res["crash_window"] = crash_window(mode, items, args.workers, args.window_seconds)
        out[mode] = res
        print(mode, json.dumps(res), flush=True)
    out["load_avg_1m"] = os.getloadavg()[0]
    print(f"\nRedis durability modes, local stack, {os.cpu_count()} cores (shared machine, 1-min load "
          f"{out['load_avg_1m_start']:.1f} at start, {out['load_avg_1m']:.1f} at end):\n")
    print("| appendfsync | REST 2 calls p50 / p99 ms | REST 1 call p50 / p99 ms | kill -9 of redis-server | "
          "acknowledged results | lost | client errors |\n|---|---:|---:|---:|---:|---:|---:|")
    for mode in ("everysec", "always"):
        r = out[mode]
        print(
            f"| {mode} | {r['rest']['p50_ms']:.1f} / {r['rest']['p99_ms']:.1f} | {r['rest_one_call']['p50_ms']:.1f} / "
            f"{r['rest_one_call']['p99_ms']:.1f} | {r['kill']['kills']} | {r['kill']['acknowledged']:,} | "
            f"{r['kill']['lost']} | {r['kill']['errors']} |"
        )
    print(f"\nMachine crash window, from redis-server's syscalls under strace ({args.window_seconds:g} s of load per "
          "mode): acknowledged results whose AOF bytes were written but not yet fsync-ed\n")
    print("| appendfsync | acknowledged (per s) | exposed | most at risk at one instant (acknowledged over) | "
          "exposure p50 / max s | AOF fsync gap p50 / max s |\n|---|---:|---:|---:|---:|---:|")
    for mode in ("everysec", "always"):
        w = out[mode]["crash_window"]
        print(f"| {mode} | {w['acknowledged']:,} ({w['results_per_s']:.0f}) | {w['exposed']:,} | {w['max_at_risk']:,} "
              f"({w['max_at_risk_span_s']:.2f} s) | {w['exposure_p50_s']:.3f} / {w['exposure_max_s']:.3f} | "
              f"{w['fsync_gap_p50_s']:.3f} / {w['fsync_gap_max_s']:.3f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")
    return out


if __name__ == "__main__":
    main()
