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
        c = int(self.cursor[group])
        if exclude is None and 0 < k <= size - c:
            # nothing excluded and no reshuffle: the next k of the epoch's order, unless one was taken already (by
            # an earlier draw of this call that wrapped): what the loop below returns, in far fewer operations
            run = self.order[lo + c: lo + c + k].copy()  # a copy: a later reshuffle rewrites the order in place
            if taken is None or not taken[run].any():
                if taken is not None:
                    taken[run] = True
                self.cursor[group] = c + k
                return run
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

    def draw_counts(self, counts: np.ndarray) -> np.ndarray | None:
        """draw(a, counts[a]) for every group at once, nothing excluded: the next counts[a] items of each group's
        order, groups in increasing order (what the calls one by one return). None when a group would reach
        the end of its epoch (the reshuffle is left to draw())."""
        start = self.offsets[:-1] + self.cursor
        if (start + counts > self.offsets[1:]).any():
            return None
        total = int(counts.sum())
        # each group's run, one after the other: position = run start + rank inside the run
        first = np.cumsum(counts) - counts
        idx = self.order[np.repeat(start - first, counts) + np.arange(total)]
        self.cursor += counts
        return idx

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


def grouped_candidates(rng: np.random.Generator, want: np.ndarray, order: np.ndarray, offsets: np.ndarray,
                       exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """random_candidates() for several disjoint groups at once (group a: order[offsets[a]:offsets[a + 1]]):
    want[a] unique random eligible items of each group, as (items, group), grouped by group in increasing
    order and in random order inside each. One pass of array operations instead of a loop over the groups;
    None when a group is too small for the sparse draw or too few of its drawn items are eligible (the
    caller then draws group by group)."""
    sizes = np.diff(offsets)
    asked = want > 0
    if (2 * want[asked] >= sizes[asked]).any():
        return None
    draws = np.where(asked, (1.3 * want).astype(np.int64) + 8, 0)
    g = np.repeat(np.arange(len(want)), draws)
    items = order[offsets[g] + (rng.random(len(g)) * sizes[g]).astype(np.int64)]
    s = np.argsort(items, kind="stable")  # (faster than the default here; a repeated item has one group)
    items, g = items[s], g[s]
    keep = np.concatenate(([True], items[1:] != items[:-1]))
    if exclude is not None:
        keep &= ~exclude[items]
    items, g = items[keep], g[keep]
    if (np.bincount(g, minlength=len(want)) < want).any():
        return None
    pick = first_per_group(group_shuffle(rng.random(len(items)), g), g, want)  # random inside each group
    return items[pick], g[pick]


def group_shuffle(r: np.ndarray, group: np.ndarray) -> np.ndarray:
    """np.lexsort((r, group)) for r from Generator.random() (multiples of 2^-53 in [0, 1)) and groups below 2^10:
    one stable sort of the exact integer keys group 2^53 + r 2^53, about twice as fast as the lexsort."""
    if len(group) and group.max() >= 1 << 10:
        return np.lexsort((r, group))
    return np.argsort(group * (1 << 53) + (r * (1 << 53)).astype(np.int64), kind="stable")


def smallest(keys: np.ndarray, n: int) -> np.ndarray:
    """np.argsort(keys, kind="stable")[:n] (the n smallest, ties by position) without sorting all of the keys: a
    partition finds the n-th smallest, and only the keys up to it are sorted."""
    if n >= len(keys) or n <= 0:
        return np.argsort(keys, kind="stable")[:n]
    v = np.partition(keys, n - 1)[n - 1]
    if np.isnan(v):
        return np.argsort(keys, kind="stable")[:n]
    below = np.flatnonzero(keys < v)
    sel = np.concatenate([below, np.flatnonzero(keys == v)[: n - len(below)]])  # each part in position order
    return sel[np.argsort(keys[sel], kind="stable")]


def first_per_group(order: np.ndarray, group: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Positions of the first counts[a] rows of each group a, taking rows in `order` (a permutation that
    sorts `group`; within a group the rows keep their order in `order`)."""
    g = group[order]
    have = np.bincount(g, minlength=len(counts))
    return order[np.arange(len(g)) - (np.cumsum(have) - have)[g] < counts[g]]


def sorted_unique(x: np.ndarray) -> np.ndarray:
    """np.unique(x) for a 1-D integer array, without np.unique's per-call overhead (the same array)."""
    x = np.sort(x)
    return x[np.concatenate(([True], x[1:] != x[:-1]))] if len(x) > 1 else x


def draw_by_arms(rng: np.random.Generator, n: int, probs: np.ndarray, sizes: np.ndarray,
                 take: Callable[[int, int], np.ndarray],
                 take_all: Callable[[np.ndarray], np.ndarray | None] | None = None) -> np.ndarray:
    """n items: per-arm counts ~ Multinomial(n, probs), `take(arm, count)` drawing the items of each arm.
    Arms that run out of eligible items (take returns fewer) hand their remainder to the others. `take_all`
    (optional) draws the first counts of every arm at once, as the take() calls would, or returns None."""
    probs = np.asarray(probs, dtype=np.float64).copy()
    probs[np.asarray(sizes) == 0] = 0
    out: list[np.ndarray] = []
    need = n
    for _ in range(len(probs) + 1):
        total = probs.sum()
        if need <= 0 or total <= 0:
            break
        counts = rng.multinomial(need, probs / total)
        if take_all is not None and need == n:
            got = take_all(counts)
            if got is not None:
                return got
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
