"""Sampling helpers: epoch-wise draws inside arms, random candidate sets, per-arm counts, softmax.

Everything here costs O(items drawn), never O(pool): at 10^6 items a selection must not touch every item."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

EMPTY = np.zeros(0, dtype=np.int64)


class ArmSampler:
    """Uniform sampling without replacement inside groups of items (epoch-wise per group).

    Each group keeps a shuffled order and a cursor; a group is reshuffled when its cursor wraps.
    Drawing k items costs O(k) amortised, independent of the pool size."""

    def __init__(self) -> None:
        self.order = np.zeros(0, dtype=np.int64)
        self.offsets = np.zeros(1, dtype=np.int64)
        self.cursor = np.zeros(0, dtype=np.int64)
        self.n_items = 0

    def sync(self, groups: list[np.ndarray], n_items: int, rng: np.random.Generator) -> None:
        if n_items == self.n_items and len(groups) == len(self.cursor):
            return
        self.order = np.concatenate([rng.permutation(g) for g in groups]) if groups else np.zeros(0, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum([len(g) for g in groups])]).astype(np.int64)
        self.cursor = np.zeros(len(groups), dtype=np.int64)
        self.n_items = n_items

    def draw(self, group: int, k: int, rng: np.random.Generator, exclude: np.ndarray | None,
             taken: np.ndarray | None = None) -> np.ndarray:
        """Up to k items of `group`, skipping those marked in `exclude` or `taken`; marks them in `taken`."""
        lo, hi = int(self.offsets[group]), int(self.offsets[group + 1])
        size = hi - lo
        out: list[np.ndarray] = []
        got, scanned = 0, 0
        while got < k and scanned < size:
            c = int(self.cursor[group])
            if c >= size:
                rng.shuffle(self.order[lo:hi])
                c = 0
            chunk = self.order[lo + c: lo + min(size, c + 2 * (k - got) + 8)]
            pos = np.flatnonzero(eligible(chunk, exclude, taken))
            if len(pos) > k - got:  # stop the cursor right after the last item used
                pos = pos[: k - got]
                used = int(pos[-1]) + 1
            else:
                used = len(chunk)
            out.append(chunk[pos])
            if taken is not None:
                taken[chunk[pos]] = True
            got += len(pos)
            self.cursor[group] = c + used
            scanned += used
        return np.concatenate(out) if len(out) > 1 else out[0] if out else EMPTY

    def state_dict(self) -> dict:
        return {"order": self.order.copy(), "offsets": self.offsets.copy(), "cursor": self.cursor.copy(),
                "n_items": self.n_items}

    def load_state_dict(self, d: dict) -> None:
        self.order, self.offsets, self.cursor = d["order"].copy(), d["offsets"].copy(), d["cursor"].copy()
        self.n_items = int(d["n_items"])


def eligible(cand: np.ndarray, exclude: np.ndarray | None, taken: np.ndarray | None = None) -> np.ndarray:
    """Bool per candidate: marked neither in `exclude` nor in `taken` (masks over the pool, or None)."""
    ok = np.ones(len(cand), dtype=bool) if exclude is None else ~exclude[cand]
    if taken is not None:
        ok &= ~taken[cand]
    return ok


def random_candidates(rng: np.random.Generator, m: int, size: int, members: np.ndarray | None = None,
                      exclude: np.ndarray | None = None, taken: np.ndarray | None = None) -> np.ndarray:
    """Up to m unique random eligible items of `members` (default: 0..size-1), in random order; O(m) when
    the set is large, exhaustive when m covers most of it."""
    if members is not None:
        size = len(members)
    if size == 0 or m <= 0:
        return EMPTY
    if 2 * m >= size:
        allidx = np.arange(size, dtype=np.int64) if members is None else members
        if exclude is not None or taken is not None:
            allidx = allidx[eligible(allidx, exclude, taken)]
        return rng.permutation(allidx)[:m]
    for attempt in range(4):
        pos = sorted_unique(rng.integers(0, size, size=int(1.3 * m) + 8))
        cand = pos if members is None else members[pos]
        if exclude is not None or taken is not None:
            cand = cand[eligible(cand, exclude, taken)]
        if len(cand) >= m or attempt == 3:
            break
    return rng.permutation(cand)[:m]


def sorted_unique(x: np.ndarray) -> np.ndarray:
    """np.unique(x) for a 1-D integer array, without np.unique's per-call overhead (the same array)."""
    x = np.sort(x)
    return x[np.concatenate(([True], x[1:] != x[:-1]))] if len(x) > 1 else x


def draw_by_arms(rng: np.random.Generator, n: int, probs: np.ndarray, sizes: np.ndarray,
                 take: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """n items: per-arm counts ~ Multinomial(n, probs), `take(arm, count)` drawing the items of each arm.
    Arms that run out of eligible items (take returns fewer) hand their remainder to the others."""
    probs = np.asarray(probs, dtype=np.float64).copy()
    probs[np.asarray(sizes) == 0] = 0
    out: list[np.ndarray] = []
    need = n
    for _ in range(len(probs) + 1):
        total = probs.sum()
        if need <= 0 or total <= 0:
            break
        counts = rng.multinomial(need, probs / total)
        for a in np.flatnonzero(counts).tolist():
            c = int(counts[a])
            got = take(a, c)
            out.append(got)
            need -= len(got)
            if len(got) < c:
                probs[a] = 0  # exhausted for this call
    return np.concatenate(out) if out else EMPTY


def softmax(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64) / temperature
    z = z - np.max(z) if len(z) else z
    e = np.exp(z)
    return e / e.sum() if len(e) else e
