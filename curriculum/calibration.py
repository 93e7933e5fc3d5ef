"""Live calibration of a predicting strategy (issue 17, "Calibration, live"): how well the teacher's model of the
learner held up, per policy version.

At lease time the strategy records, for every item it leases, its predicted pass rate p_i and its predicted
probability q_i that the item's group will be degenerate (all rewards equal) — `record`. When the group comes
back, in the fold of its step (`resolve`), the prediction is scored against the outcome (m_i: the group's mean
reward, d_i: 1 if the group was degenerate):

    per policy version v (one curriculum step), over the step's groups that resolve a prediction:
        spearman_v = Pearson correlation of the average ranks of (p_i) and (m_i)     (None if either is constant)
        brier_v    = (1/n) sum (q_i - d_i)^2
    over the run: brier = the pooled Brier score, spearman = the mean of the per-version values

Each version is one row of a bounded history (the last `HISTORY` versions), which `/state` `details`, `/metrics`
and the run report read. A strategy may add its own per-version numbers to the row (the skip gate adds its
true/false positives of the step, so precision and recall can be plotted per version too).

Storage, per item: p, q and `lease` (the sequence number of the lease that recorded them) change at lease time,
so they are `select_items` of the strategy (snapshotted, not rewound by the step ledger); `done` (the lease
already scored) changes in the fold and is rewound with it, so folding a step again scores it identically.
Known limit: an item leased twice within one policy version has its groups scored against the later prediction.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from curriculum.events import EventBatch
from curriculum.items import grow as _grow

HISTORY = 256  # policy versions kept in the history
ITEM: dict[str, tuple[Any, Any]] = {"p": (np.float64, np.nan), "q": (np.float64, np.nan), "lease": (np.int64, 0),
                                    "done": (np.int64, 0)}
SELECT_ITEM = ("p", "q", "lease")


def item_state(prefix: str) -> dict[str, tuple[Any, Any]]:
    return {prefix + n: v for n, v in ITEM.items()}


def select_items(prefix: str) -> tuple[str, ...]:
    return tuple(prefix + n for n in SELECT_ITEM)


def state_attrs(prefix: str) -> tuple[str, ...]:
    """All scalar state: `seq` (select-time), `hist` and `tot` (fold-time: see step_attrs)."""
    return (prefix + "seq", *step_attrs(prefix))


def step_attrs(prefix: str) -> tuple[str, ...]:
    return (prefix + "hist", prefix + "tot")


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 with ties sharing their mean rank (binary and small-group outcomes tie a lot)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    if len(x) and np.isnan(xs[-1]):  # (nan sorts last; np.unique counts all nan as one value)
        uniq, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
        return (np.cumsum(counts) - counts + (counts - 1) / 2.0)[inv]
    # np.unique's result without its overhead: runs of equal values in sorted order
    start = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    counts = np.diff(np.append(start, len(x)))
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(start + (counts - 1) / 2.0, counts)
    return ranks


def first_rows(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(items, return_index=True): the distinct items, sorted, and the row of each one's first group. A
    step's canonical batch is sorted by item, most often with one group per item: then it is the batch itself."""
    if len(items) < 2 or (items[1:] > items[:-1]).all():
        return items, np.arange(len(items))
    return np.unique(items, return_index=True)


def spearman(a, b) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None with fewer than 3 pairs or a constant side."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 3:
        return None
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - _mean(ra), rb - _mean(rb)
    den = float(np.sqrt((ra**2).sum() * (rb**2).sum()))
    return float((ra * rb).sum() / den) if den > 0 else None


def _mean(x: np.ndarray) -> float:
    """float(x.mean()) of a non-empty float array (the same sum and division) without np.mean's per-call cost."""
    return float(x.sum()) / len(x)


def brier(q, d) -> float | None:
    q, d = np.asarray(q, dtype=np.float64), np.asarray(d, dtype=np.float64)
    return _mean((q - d) ** 2) if len(q) else None


class _Holder:
    pass


def loaded(store: Any, prefix: str) -> None:
    """After a snapshot is loaded into `store` (a strategy): the history is a tuple again, live and in the step
    ledger's saved start (the codec writes a tuple as a list; see `resolve` for why a tuple)."""
    setattr(store, prefix + "hist", tuple(getattr(store, prefix + "hist", ())))
    saved = store.__dict__.get("_start", {}).get("attr", {})
    if prefix + "hist" in saved:
        saved[prefix + "hist"] = tuple(saved[prefix + "hist"])


class Calibration:
    """Lease-time predictions and their scores; see the module docstring. The arrays and counters live in a
    store (a strategy, under `prefix`), like `curriculum.gates.SkipGate`."""

    def __init__(self, n: int = 0, *, store: Any = None, prefix: str = "") -> None:
        self._p = prefix
        if store is None:
            store = _Holder()
            for name, (dt, fill) in item_state(prefix).items():
                setattr(store, name, np.full(n, fill, dtype=dt))
        self._s = store
        for name, v in (("seq", 0), ("hist", ()), ("tot", [0, 0.0, 0.0, 0])):
            if not hasattr(store, prefix + name):
                setattr(store, prefix + name, v)

    def _get(self, name: str) -> Any:
        return getattr(self._s, self._p + name)

    def grow(self, n: int) -> None:
        for name, (_dt, fill) in item_state(self._p).items():
            setattr(self._s, name, _grow(getattr(self._s, name), n, fill))

    # -- lease time ---------------------------------------------------------------------------------------
    def record(self, idx, pass_rate, p_degenerate) -> None:
        """The predictions of the items just leased (one lease sequence number per call)."""
        idx = np.asarray(idx, dtype=np.int64)
        if not len(idx):
            return
        seq = self._get("seq") + 1
        setattr(self._s, self._p + "seq", seq)
        self._get("p")[idx] = pass_rate
        self._get("q")[idx] = p_degenerate
        self._get("lease")[idx] = seq

    # -- in the fold of a step ------------------------------------------------------------------------------
    def resolve(self, batch: EventBatch, version: int, extra: dict | None = None) -> None:
        """Score the step's groups that have a pending prediction (an item's first group in the step) and write
        the step's row of the history. `batch` is the open step's whole evidence (the fold's argument)."""
        items, first = first_rows(batch.item)
        lease, done = self._get("lease"), self._get("done")
        pending = lease[items] > done[items]
        it, rows = items[pending], first[pending]
        p, q = self._get("p")[it], self._get("q")[it]
        m, d = batch.mean[rows], batch.degenerate[rows].astype(np.float64)
        done[it] = lease[it]
        if not len(it) and not extra:
            return
        row = {"version": int(version), "n": len(it), "spearman": spearman(p, m), "brier": brier(q, d),
               "predicted_pass": _mean(p) if len(it) else None, "realized_pass": _mean(m) if len(it) else None,
               "predicted_degenerate": _mean(q) if len(it) else None,
               "realized_degenerate": _mean(d) if len(it) else None, **(extra or {})}
        # a new tuple of rows never changed once written: the step ledger saves and restores the history at every
        # fold and snapshot by reference (copy_state keeps a tuple as it is), not as 256 dicts copied one by one
        setattr(self._s, self._p + "hist", (*self._get("hist")[1 - HISTORY:], row))
        tot = self._get("tot")  # [groups scored, Brier sum, sum of per-version Spearman, versions with one]
        tot[0] += len(it)
        tot[1] += float(((q - d) ** 2).sum())
        if row["spearman"] is not None:
            tot[2] += row["spearman"]
            tot[3] += 1

    # -- reading --------------------------------------------------------------------------------------------
    def metrics(self, last: int = HISTORY) -> dict:
        """Totals, the latest version's row, and the last `last` rows as columns (for plots)."""
        tot, hist = self._get("tot"), self._get("hist")
        rows = hist[-last:]
        keys = list(dict.fromkeys(k for r in rows for k in r))
        return {"resolved": int(tot[0]), "brier": tot[1] / tot[0] if tot[0] else None,
                "spearman": tot[2] / tot[3] if tot[3] else None, "latest": dict(hist[-1]) if hist else None,
                "history": {k: [r.get(k) for r in rows] for k in keys}}


def find_part(d: Any, key: str) -> dict | None:
    """The first dict under `key` in nested details, breadth-first (a wrapper's own before its inner's)."""
    queue = [d]
    while queue:
        x = queue.pop(0)
        if isinstance(x, dict):
            if isinstance(x.get(key), dict):
                return x[key]
            queue.extend(v for v in x.values() if isinstance(v, dict))
    return None


def live_summary(details: dict) -> dict:
    """The flat numbers `/metrics` exports from a strategy's `details`: calibration (run Brier, mean and latest
    Spearman), the skip gate's precision / recall / re-tests, and the screening overhead; absent parts omitted."""
    out: dict[str, float] = {}
    cal = find_part(details, "calibration")
    if cal:
        latest = cal.get("latest") or {}
        for k, v in (("resolved", cal.get("resolved")), ("brier", cal.get("brier")), ("spearman", cal.get("spearman")),
                     ("spearman_latest", latest.get("spearman")), ("brier_latest", latest.get("brier"))):
            if v is not None:
                out["calibration_" + k] = float(v)
    gate = find_part(details, "skip_gate")
    if gate:
        for k in ("precision", "recall", "retests", "skipped", "retest_rollouts", "retest_tokens"):
            if gate.get(k) is not None:
                out["skip_gate_" + k] = float(gate[k])
    scr = find_part(details, "screening")
    if scr:
        for k, name in (("screen_rollouts", "rollouts"), ("screen_tokens", "tokens"), ("screens", "groups"),
                        ("qualified", "qualified")):
            out["screen_" + name] = float(scr[k])
    return out
