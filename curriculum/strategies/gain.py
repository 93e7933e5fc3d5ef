"""gain: GAIN-RL, "Angles Don't Lie: Unlocking Training-Efficient RL Through the Model's Own Signals" (Wang et al.,
arXiv 2506.02281, NeurIPS 2025).

The policy's own token states say which prompts it will learn from first: the angle concentration of a prompt's
last-layer token states (the mean cosine between them; the `hf` backend reports it as the feature `angle`,
workers/backends/angles.py) is high for prompts whose gradients are large early in training. Items are sorted
by concentration, highest first; with pos_i = rank_i / N (N = pool size) a step samples without replacement

    p_i ∝ exp(-1/2 ((pos_i - mu) / sigma)^2)                     (Gumbel-top-k, eligible items only)

and at the end of each step (policy version) the center moves by that step's accuracy and mean angle,

    delta = n tanh(alpha (acc - beta)) + n tanh(alpha angle)      mu <- mu + clip(delta, adj_min, adj_max)

acc = mean group pass rate of the step (rewards on [0, 1]), angle = mean reported concentration of its items.
The paper's constants (sigma = 1000, n = 500, adj_max = 1000 on a ~7.5k-prompt GSM8K pool, alpha = 2, beta = 0.5,
adj_min = 0) are given here as fractions of the pool, so the rule scales with it. With adj_min = 0 the center only
moves forward: the curriculum sweeps from high-concentration to low-concentration prompts.

Choices where the paper (or its code) differs or says nothing, all made explicit:

* The paper ranks every prompt once, before training, with the initial model; here an item's concentration is
  the latest one a worker reported for it (so the order follows the policy), or the item's `metadata["angle"]`
  (an offline prefill pass, the paper's ranking) until one is reported.
* Items with no concentration yet are **unmeasured**: they lead the order (in a fixed pseudo-random order, by
  item index and seed), so the sweep measures them first, as the paper's offline pass measures every prompt
  before training. When no item has a concentration at all (e.g. a `vllm` worker, which cannot read hidden
  states), sampling is uniform and `details.fallback` says why.
* A step without any reported angle moves the center by the accuracy term only (angle term 0).
* `acc_halving` reproduces the trl code's quirk (Ā/2, a correct answer scoring 2); off by default. The paper's
  verl variant, with 0/1 rewards, halves a 0/1 accuracy too, so its accuracy term is never positive.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import Field, model_validator

from curriculum.events import EventBatch
from curriculum.params import StrategyParams
from curriculum.registry import register
from curriculum.strategy import Strategy

_MIX = np.uint64(0x9E3779B97F4A7C15)


FAST_SHARE = 4  # sample by ranks when the pool holds at least this many times the items asked for
PROPOSALS = 16  # rounds of rank proposals before the exact Gumbel-top-k over all eligible items takes over
BLOCKS = 1024  # blocks of ranks in the rejection sampler's envelope


class SortedOrder:
    """Items sorted by a unique-enough complex key (see Gain.sort_keys): `order` (rank -> item), `sorted` (the
    keys in that order) and `key` (item -> the key it is filed under). Equal keys are kept in item order, as a
    stable sort of the whole pool would put them."""

    def __init__(self, keys: np.ndarray) -> None:
        self.key = keys
        self.order = np.argsort(keys, kind="stable")
        self.sorted = keys[self.order]
        self.measured = int(np.count_nonzero(np.isfinite(keys.real)))

    def ranks(self, items: np.ndarray) -> np.ndarray:
        """The rank of each item: a binary search, then a step over equal keys (rare) to the item itself."""
        pos = np.searchsorted(self.sorted, self.key[items])
        for k in np.flatnonzero(self.order[np.minimum(pos, len(self.order) - 1)] != items).tolist():
            while self.order[pos[k]] != items[k]:
                pos[k] += 1
        return pos

    def update(self, items: np.ndarray, keys: np.ndarray) -> None:
        """Refile the (unique) items under their new keys: take them out, merge them back in."""
        moved = self.key[items] != keys
        items, keys = items[moved], keys[moved]
        if not len(items):
            return
        self.measured += int(np.isfinite(keys.real).sum() - np.isfinite(self.key[items].real).sum())
        gone = self.ranks(items)
        self.key[items] = keys
        by = np.argsort(keys, kind="stable")  # items are sorted: equal new keys stay in item order
        items, keys = items[by], keys[by]
        at = np.searchsorted(self.sorted, keys, side="left")  # before the old element at `at`
        hit = at < len(self.sorted)
        if (self.sorted[at[hit]] == keys[hit]).any():  # an equal key already filed: place it by item index
            self._refile_slowly(gone, items, keys)
            return
        # one pass over the arrays: the old elements between the events, each moved item at its place
        events = sorted([(int(p), 0, k) for k, p in enumerate(at.tolist())] + [(int(p), 1, -1) for p in gone.tolist()])
        cuts_o, cuts_s, prev = [], [], 0
        for p, gone_here, k in events:
            cuts_o.append(self.order[prev:p])
            cuts_s.append(self.sorted[prev:p])
            if gone_here:
                prev = p + 1
            else:
                cuts_o.append(items[k: k + 1])
                cuts_s.append(keys[k: k + 1])
                prev = p
        self.order = np.concatenate([*cuts_o, self.order[prev:]])
        self.sorted = np.concatenate([*cuts_s, self.sorted[prev:]])

    def _refile_slowly(self, gone: np.ndarray, items: np.ndarray, keys: np.ndarray) -> None:
        """update() where a new key equals one already filed: out, then in after every equal one of a lower index."""
        keep = np.ones(len(self.order), dtype=bool)
        keep[gone] = False
        order, srt = self.order[keep], self.sorted[keep]
        at = np.searchsorted(srt, keys, side="left")
        ties = np.flatnonzero(at < len(srt))
        ties = ties[srt[at[ties]] == keys[ties]]
        for k in ties.tolist():
            while at[k] < len(srt) and srt[at[k]] == keys[k] and order[at[k]] < items[k]:
                at[k] += 1
        self.order = np.insert(order, at, items)
        self.sorted = np.insert(srt, at, keys)


def sample_ranks(rng: np.random.Generator, n: int, size: int, weight: Callable[[np.ndarray], np.ndarray],
                 peak: float, order: np.ndarray,
                 exclude: np.ndarray | None, taken: np.ndarray) -> np.ndarray | None:
    """n items without replacement, each next one drawn with probability ∝ weight(its rank) among the eligible
    items not drawn yet: the distribution (order included) of Gumbel-top-k over all eligible items, drawn in
    O(n) instead of O(pool). Ranks are drawn with replacement by rejection from a piecewise-constant envelope
    (the weight's maximum over each block of ranks: the weight is a bump around the rank `peak`, so the
    maximum sits at the block's rank nearest it); an item already drawn or excluded is dropped, which leaves
    exactly the successive draws without replacement. None when PROPOSALS rounds did not find n (most of the
    mass excluded): the caller takes the exact path. `taken` (a clear pool-sized mask) is used and cleared."""
    width = -(-size // BLOCKS)
    start = np.arange(0, size, width)
    stop = np.minimum(start + width, size)
    last = stop - 1  # the weight's maximum over a block's ranks: at the rank nearest the peak, one side or other
    env = np.maximum(weight(np.clip(np.floor(peak), start, last)), weight(np.clip(np.ceil(peak), start, last)))
    cdf = np.cumsum(env * (stop - start))
    got: list[np.ndarray] = []
    have = 0
    try:
        for _ in range(PROPOSALS):
            if have >= n or cdf[-1] <= 0:
                break
            m = 2 * (n - have) + 16
            b = np.minimum(np.searchsorted(cdf, rng.random(m) * cdf[-1], side="right"), len(cdf) - 1)
            r = start[b] + np.floor(rng.random(m) * (stop[b] - start[b])).astype(np.int64)
            r = r[rng.random(m) * env[b] < weight(r)]
            items = order[r]
            if exclude is not None:
                items = items[~exclude[items]]
            items = items[~taken[items]]
            _, first = np.unique(items, return_index=True)
            items = items[np.sort(first)][: n - have]
            taken[items] = True
            got.append(items)
            have += len(items)
    finally:
        for g in got:
            taken[g] = False
    return np.concatenate(got) if have >= n and got else None


class GainParams(StrategyParams):
    sigma: float = Field(0.134, gt=0, description="width of the Gaussian over the sorted order, as a share of the "
                         "pool (paper: 1000 of ~7.5k)")
    step: float = Field(0.067, ge=0, description="n: scale of the center's move per step, as a share of the pool "
                        "(paper: 500)")
    alpha: float = Field(2.0, ge=0, description="slope of both tanh terms (paper: 2)")
    beta: float = Field(0.5, ge=0, le=1, description="accuracy at which the accuracy term is zero (paper: 0.5)")
    adj_min: float = Field(0.0, description="smallest move of the center per step, share of the pool (paper: 0)")
    adj_max: float = Field(0.134, description="largest move of the center per step, share of the pool (paper: 1000)")
    mu0: float = Field(0.0, description="initial center, as a position in [0, 1] of the sorted order (paper: 0)")
    acc_halving: bool = Field(False, description="use accuracy / 2 as the trl code does (a correct answer scores 2)")
    feature: str = Field("angle", min_length=1, max_length=32, description="the reported feature to sort by")

    @model_validator(mode="after")
    def _clip(self) -> GainParams:
        if self.adj_min > self.adj_max:
            raise ValueError("adj_min must be <= adj_max")
        return self


@register
class Gain(Strategy):
    name = "gain"
    description = "GAIN-RL: Gaussian over items sorted by the policy's angle concentration; center moved by accuracy."
    Params = GainParams
    item_state = {"angle": (np.float64, np.nan)}
    state_attrs = ("mu", "last")

    def setup(self) -> None:
        self.mu = float(self.params.mu0)
        self.last = {"accuracy": None, "angle": None, "delta": 0.0}  # the last step's terms (describe)
        self._order: SortedOrder | None = None  # a cache of the order, rebuilt from `angle` when it is dropped
        self._dirty: list[np.ndarray] = []  # items whose concentration changed since the order was last read

    def on_grow(self, old_items: int, old_arms: int) -> None:
        meta = self.pool._metadata  # the offline ranking pass, if one wrote `metadata["angle"]`
        for i in range(old_items, self.pool.size):
            m = meta[i]
            x = m.get("angle") if isinstance(m, dict) else None
            if isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x):
                self.angle[i] = float(x)

    def update(self, batch: EventBatch) -> None:
        got = batch.feature(self.params.feature)
        angle = None
        if got is not None and got[1].any():
            vals, present = got
            self.angle[batch.item[present]] = vals[present, 0]  # canonical order: a repeated item keeps its last
            self._dirty.append(batch.item[present])  # refiled in the order at its next read
            angle = float(vals[present, 0].mean())
        acc = float(batch.mean.mean()) if len(batch) else 0.0
        delta = self.clipped_delta(acc, angle)
        self.mu += delta
        self.last = {"accuracy": acc, "angle": angle, "delta": delta}

    def raw_delta(self, acc: float, angle: float | None) -> float:
        """n tanh(alpha (acc - beta)) + n tanh(alpha angle), unclipped (angle None: that term is 0)."""
        p = self.params
        a = acc / 2 if p.acc_halving else acc
        return float(p.step * (np.tanh(p.alpha * (a - p.beta)) + (0.0 if angle is None else np.tanh(p.alpha * angle))))

    def clipped_delta(self, acc: float, angle: float | None) -> float:
        p = self.params
        return float(np.clip(self.raw_delta(acc, angle), p.adj_min, p.adj_max))

    # -- the order, kept sorted incrementally -----------------------------------------------------------
    def sort_keys(self, idx: np.ndarray) -> np.ndarray:
        """Each item's place in the order as one complex number, compared as (real, imag) by numpy's sort:
        real -inf for an unmeasured item (they lead) else -concentration (highest first), imag the item's fixed
        scramble (the pseudo-random order among equal reals; 53 bits, exact in a float)."""
        scramble = (idx.astype(np.uint64) + np.uint64(self.seed & 0xFFFFFFFF)) * _MIX >> np.uint64(11)
        a = self.angle[idx]
        return np.where(np.isnan(a), -np.inf, -a) + 1j * scramble.astype(np.float64)

    def order(self) -> SortedOrder:
        """The items sorted by `sort_keys`, brought up to date with the concentrations changed since the last
        read: O(changed log N) searches plus one O(N) move of memory, instead of sorting the pool again."""
        o = self.__dict__.get("_order")
        if o is None or len(o.key) != len(self.angle):
            o = self.__dict__["_order"] = SortedOrder(self.sort_keys(np.arange(len(self.angle))))
            self._dirty = []
        elif self._dirty:
            items = np.unique(np.concatenate(self._dirty))
            self._dirty = []
            o.update(items, self.sort_keys(items))
        return o

    def positions(self) -> np.ndarray:
        """pos_i = rank_i / N for every item: unmeasured items first (fixed pseudo-random order), then by
        concentration, highest first (ties by the scramble, then by index). O(N): for reading, not sampling."""
        o = self.order()
        pos = np.empty(len(o.order))
        pos[o.order] = np.arange(len(o.order)) / max(len(o.order), 1)
        return pos

    def rank_weights(self, ranks: np.ndarray) -> np.ndarray:
        """exp(-1/2 ((rank / N - mu) / sigma)^2); all 1 while no item is measured (uniform, module docstring)."""
        o = self.order()
        if o.measured == 0:
            return np.ones(len(ranks))
        return np.exp(-0.5 * ((ranks / max(len(o.order), 1) - self.mu) / self.params.sigma) ** 2)

    def log_weights(self, idx: np.ndarray) -> np.ndarray:
        o = self.order()
        if o.measured == 0:  # nothing measured: uniform (see the module docstring)
            return np.zeros(len(idx))
        return -0.5 * ((o.ranks(idx) / max(len(o.order), 1) - self.mu) / self.params.sigma) ** 2

    def choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        """n of the candidates without replacement, P ∝ exp(log_weights): the Gumbel-top-k trick."""
        if n <= 0 or not len(candidates):
            return candidates[:0]
        g = self.log_weights(candidates) + self.rng.gumbel(size=len(candidates))
        top = np.argpartition(-g, n - 1)[:n] if n < len(candidates) else np.arange(len(candidates))
        return candidates[top[np.argsort(-g[top], kind="stable")]]

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        size = self.pool.size
        if FAST_SHARE * n <= size:
            got = sample_ranks(self.rng, n, size, self.rank_weights, self.mu * size, self.order().order, exclude,
                               self.scratch_mask())
            if got is not None:
                return got
        eligible = np.arange(size) if exclude is None else np.flatnonzero(~exclude)
        return self.choose(min(n, len(eligible)), eligible)

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        self._order, self._dirty = None, []

    def details(self) -> dict:
        measured = self.order().measured
        out = {"mu": self.mu, "measured": measured, "last_accuracy": self.last["accuracy"],
               "last_angle": self.last["angle"], "last_delta": self.last["delta"]}
        if measured == 0:
            out["fallback"] = f"uniform: no item has a reported {self.params.feature!r} feature"
        return out
