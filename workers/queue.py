"""RolloutQueue: finished rollout groups from students to learners, on a Redis stream with a consumer group.

* At-least-once: producers XADD; trainer ranks XREADGROUP their own groups and XACK (+XDEL) them only after
  the optimizer step that used them is committed. A dead trainer's pending groups are taken over with
  XAUTOCLAIM; a group delivered more than `max_deliveries` times goes to a dead-letter stream instead.
* Staleness: a group produced more than `max_staleness` policy versions before the reader's version is
  dropped on read (acked, deleted, counted).
* Backpressure: depth = entries still in the stream = unread + pending (acked ones are deleted). Producers
  wait while depth >= budget. The stream is never trimmed with MAXLEN: that would drop unread data.
Counters live in a Redis hash so every process sees them.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import redis

from services.keys import dead_letter_key, queue_counters_key, rollouts_key
from workers.grpo import Group

GROUP_NAME = "trainers"


@dataclass
class Delivery:
    id: str
    group: Group
    deliveries: int = 1


def encode(g: Group) -> bytes:
    return json.dumps({"p": g.prompt_ids, "c": g.completions, "l": [[round(x, 6) for x in lp] for lp in g.logprobs],
                       "r": g.rewards, "k": g.category, "v": g.policy_version, "i": g.item_id, "m": g.meta,
                       "t": g.temperature},
                      separators=(",", ":")).encode()


def decode(b: bytes) -> Group:
    d = json.loads(b)
    return Group(d["p"], d["c"], d["l"], d["r"], d["k"], d["v"], d["i"], d.get("m", {}), d.get("t", 1.0))


class RolloutQueue:
    def __init__(self, redis_url: str, experiment: str, max_staleness: int = 4, max_deliveries: int = 5) -> None:
        self.r = redis.Redis.from_url(redis_url)
        self.stream = rollouts_key(experiment)
        self.dead = dead_letter_key(experiment)
        self.counters = queue_counters_key(experiment)
        self.max_staleness, self.max_deliveries = max_staleness, max_deliveries
        try:
            self.r.xgroup_create(self.stream, GROUP_NAME, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    # -- producers -----------------------------------------------------------------------------
    def put(self, groups: Iterable[Group]) -> list[str]:
        pipe = self.r.pipeline(transaction=False)
        n = samples = tokens = 0
        for g in groups:
            pipe.xadd(self.stream, {"g": encode(g)})
            n, samples, tokens = n + 1, samples + len(g.rewards), tokens + sum(len(c) for c in g.completions)
        # groups differ in size (a screen leases a few samples), so rollouts are counted as samples, not groups
        for key, v in (("produced", n), ("produced_samples", samples), ("produced_tokens", tokens)):
            pipe.hincrby(self.counters, key, v)
        return [x.decode() for x in pipe.execute()[:-3]]

    def depth(self) -> int:
        return int(self.r.xlen(self.stream))

    def has_room(self, budget: int) -> bool:
        return self.depth() < budget

    def wait_for_room(self, budget: int, timeout: float | None = None, poll: float = 0.05) -> bool:
        """Block while the queue holds >= budget groups; False if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.has_room(budget):
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(poll)
        return True

    # -- consumers -----------------------------------------------------------------------------
    def read(
        self, consumer: str, max_groups: int, block_ms: int = 1000, current_version: int | None = None
    ) -> list[Delivery]:
        """New groups for this consumer (stale ones dropped and counted)."""
        resp = self.r.xreadgroup(GROUP_NAME, consumer, {self.stream: ">"}, count=max_groups, block=block_ms)
        out = [Delivery(rid.decode(), decode(f[b"g"])) for _, rows in (resp or []) for rid, f in rows if f]
        return self._drop_stale(out, current_version)

    def _drop_stale(self, out: list[Delivery], current_version: int | None) -> list[Delivery]:
        if current_version is None:
            return out
        stale = [d for d in out if current_version - d.group.policy_version > self.max_staleness]
        self.discard(stale, "dropped_stale")
        return [d for d in out if d not in stale]

    def discard(self, deliveries: list[Delivery], reason: str) -> int:
        """Groups that will never be trained (stale, degenerate): acknowledged and deleted now, not held as
        pending (which would count against the producers' budget), and counted under `reason`."""
        if not deliveries:
            return 0
        n = self._done([d.id for d in deliveries])
        self.r.hincrby(self.counters, reason, len(deliveries))
        return n

    def ack(self, ids: list[str]) -> int:
        """Call only after the optimizer step that used these groups is committed."""
        n = self._done(ids)
        self.r.hincrby(self.counters, "acked", n)
        return n

    def _done(self, ids: list[str]) -> int:
        if not ids:
            return 0
        pipe = self.r.pipeline(transaction=True)
        pipe.xack(self.stream, GROUP_NAME, *ids)
        pipe.xdel(self.stream, *ids)
        return int(pipe.execute()[0])

    def claim_stale(self, consumer: str, min_idle_ms: int, max_groups: int = 100,
                    current_version: int | None = None) -> list[Delivery]:
        """Take over groups another consumer read but never acked for min_idle_ms (it died)."""
        _, rows, _deleted = self.r.xautoclaim(self.stream, GROUP_NAME, consumer, min_idle_ms, "0-0", count=max_groups)
        if not rows:
            return []
        ids = [rid.decode() for rid, _ in rows]
        info = {p["message_id"].decode(): p["times_delivered"]
                for p in self.r.xpending_range(self.stream, GROUP_NAME, min=ids[0], max=ids[-1], count=len(ids) + 100)}
        out, dead = [], []
        for rid, f in rows:
            rid = rid.decode()
            n = int(info.get(rid, 1))
            if n > self.max_deliveries:
                dead.append((rid, f[b"g"]))
            else:
                out.append(Delivery(rid, decode(f[b"g"]), n))
        if dead:
            pipe = self.r.pipeline(transaction=False)
            for rid, payload in dead:
                pipe.xadd(self.dead, {"g": payload, "id": rid})
            pipe.execute()
            self._done([rid for rid, _ in dead])
            self.r.hincrby(self.counters, "dead_lettered", len(dead))
        self.r.hincrby(self.counters, "claimed", len(out))
        return self._drop_stale(out, current_version)

    def stats(self) -> dict:
        c = {k.decode(): int(v) for k, v in self.r.hgetall(self.counters).items()}
        pending = self.r.xpending(self.stream, GROUP_NAME)["pending"]
        return {"depth": self.depth(), "pending": int(pending), "dead_letter": int(self.r.xlen(self.dead)), **c}

    def delete(self) -> None:
        self.r.delete(self.stream, self.dead, self.counters)


def balance(groups: list[Group], proportions: dict[str, float], n: int) -> tuple[list[int], int]:
    """Indices of up to n non-degenerate groups mixed across categories in the asked proportions (largest
    remainder; categories short of groups hand their share to the others). Returns (indices, degenerate)."""
    live = [i for i, g in enumerate(groups) if not g.degenerate]
    degenerate = len(groups) - len(live)
    by_cat: dict[str, list[int]] = {}
    for i in live:
        by_cat.setdefault(groups[i].category, []).append(i)
    cats = sorted(by_cat)
    if not cats:
        return [], degenerate
    w = np.array([max(proportions.get(c, 0.0), 0.0) for c in cats])
    w = w / w.sum() if w.sum() > 0 else np.full(len(cats), 1 / len(cats))
    n = min(n, len(live))
    want = np.floor(w * n).astype(int)
    for k in np.argsort(-(w * n - want))[: n - want.sum()]:
        want[k] += 1
    take = np.minimum(want, [len(by_cat[c]) for c in cats])
    spare = n - take.sum()
    while spare > 0:  # hand the shortfall to categories that still have groups, by weight
        room = np.array([len(by_cat[c]) for c in cats]) - take
        if room.sum() == 0:
            break
        k = int(np.argmax(np.where(room > 0, w, -1)))
        take[k] += 1
        spare -= 1
    out = [i for c, k in zip(cats, take) for i in by_cat[c][:k]]
    return out, degenerate
