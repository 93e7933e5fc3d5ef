"""The noise guard (NoiseGuardParams): per-arm evidence of item signal and of progress, and the gate that caps
the arms judged noise. A mixin of Strategy: its arrays are per-arm state of the strategy (snapshotted, rewound
with the step like the others)."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from curriculum.events import EventBatch
from curriculum.params import NoiseGuardParams
from curriculum.sampling import EMPTY

#: per-arm evidence: discounted sums of paired differences, mixed flags and group-mean moments
GUARD_ARM: dict[str, tuple[Any, Any]] = {
    "pair_s": (np.float64, 0.0), "pair_q": (np.float64, 0.0), "pair_n": (np.float64, 0.0),
    "mix_s": (np.float64, 0.0), "mix_n": (np.float64, 0.0),
    "disp_m1": (np.float64, 0.0), "disp_m2": (np.float64, 0.0), "disp_v": (np.float64, 0.0),
    "disp_n": (np.float64, 0.0)}
_DEFAULT = NoiseGuardParams()


_POWERS: dict[float, np.ndarray] = {}
_SHIFTS6 = np.arange(6)  # row k of the six stacked per-arm sums lives at bins k * arms + arm


def powers(lam: float, n: int) -> np.ndarray:
    """lam ** arange(n + 1) (at least), cached per lam (the same values as lam ** k computed one by one). Grown
    by doubling: a never-seen item's age is the version itself, so n grows by one per step."""
    table = _POWERS.get(lam)
    if table is None or len(table) <= n:
        size = max(n + 1, 1024, 2 * len(table) if table is not None else 0)
        table = _POWERS[lam] = lam ** np.arange(size, dtype=np.float64)
    return table


def discount(group: np.ndarray, lam: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Exponential forgetting over rows of several groups at once: (lam^count per group, lam^age per row),
    where a row's age is how many rows of its group come after it."""
    n = len(group)
    count = np.bincount(group, minlength=size)
    order = np.argsort(group, kind="stable")  # within a group, rows keep their order
    age = np.empty(n, dtype=np.int64)
    age[order] = np.cumsum(count)[group[order]] - np.arange(1, n + 1)  # rows after it: group end - position - 1
    table = powers(lam, n)
    return table[count], table[age]


def guard_params(params: Any) -> NoiseGuardParams | None:
    """The strategy's noise-guard parameters (None without a guard), found without pydantic's slow miss."""
    return params.__dict__.get("noise_guard")


class NoiseGuard:
    """Evidence folding, statistics and gating of the noise guard (mixed into Strategy)."""

    pool: Any
    params: Any
    rng: np.random.Generator
    guard_arrays: ClassVar[tuple[str, ...]] = tuple(GUARD_ARM)

    def _guard_fold(self, cat: np.ndarray, batch: EventBatch, before: np.ndarray) -> None:
        """Add the step's paired differences and mixed flags to each arm's discounted sums.
        `before` holds each group's item mean at its previous visit (nan: first visit). Rows are aged in
        their (canonical) order within each arm: the newest has age 0."""
        guard = guard_params(self.params) or _DEFAULT
        lam = 1.0 - 1.0 / guard.horizon
        a = self.pool.num_categories
        decay, w = discount(cat, lam, a)
        count, mean = batch.count, batch.mean
        multi = count > 1  # a group of one says nothing about its own sampling variance
        if multi.all():  # the common case: mixed flags and moments share the rows and weights of the whole step
            v = batch.std ** 2 / (count - 1)
            # one bincount for all six sums (per arm, each in row order: the same sums as six bincounts)
            wts = np.concatenate([w * ~batch.degenerate, w, w, w * mean, w * mean**2, w * v])
            sums = np.bincount((cat + _SHIFTS6[:, None] * a).ravel(), weights=wts, minlength=6 * a)
            old = np.stack([self.mix_s, self.mix_n, self.disp_n, self.disp_m1, self.disp_m2, self.disp_v])
            new = decay * old + sums.reshape(6, a)
            self.mix_s, self.mix_n, self.disp_n, self.disp_m1, self.disp_m2, self.disp_v = new
        else:
            self.mix_s = decay * self.mix_s + np.bincount(cat, weights=w * ~batch.degenerate, minlength=a)
            self.mix_n = decay * self.mix_n + np.bincount(cat, weights=w, minlength=a)
            cat_m, mean_m, v = cat[multi], mean[multi], batch.std[multi] ** 2 / (count[multi] - 1)
            if len(cat_m):
                decay, w = discount(cat_m, lam, a)
                self.disp_n = decay * self.disp_n + np.bincount(cat_m, weights=w, minlength=a)
                self.disp_m1 = decay * self.disp_m1 + np.bincount(cat_m, weights=w * mean_m, minlength=a)
                self.disp_m2 = decay * self.disp_m2 + np.bincount(cat_m, weights=w * mean_m**2, minlength=a)
                self.disp_v = decay * self.disp_v + np.bincount(cat_m, weights=w * v, minlength=a)
        d = mean - before
        paired = ~np.isnan(d)
        if paired.any():
            pc, dp = cat[paired], d[paired]
            decay, w = discount(pc, lam, a)
            sums = np.bincount(np.concatenate([pc, pc + a, pc + 2 * a]),
                               weights=np.concatenate([w * dp, w * dp**2, w]), minlength=3 * a)
            new = decay * np.stack([self.pair_s, self.pair_q, self.pair_n]) + sums.reshape(3, a)
            self.pair_s, self.pair_q, self.pair_n = new

    def progress_t(self) -> np.ndarray:
        """Per-arm progress statistic t = |S| / sqrt(Q) (nan without pairs)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._t_phi()[0]

    def dispersion(self) -> np.ndarray:
        """Per-arm dispersion ratio phi (nan without groups of two or more)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._t_phi()[1]

    def _t_phi(self) -> tuple[np.ndarray, np.ndarray]:
        """(progress_t(), dispersion()), inside the caller's errstate (one, not one each: they cost)."""
        n = self.disp_n
        t = np.where(self.pair_q > 0, np.abs(self.pair_s) / np.sqrt(self.pair_q), np.nan)
        return t, np.where(n > 0, (self.disp_m2 / n - (self.disp_m1 / n) ** 2) / (self.disp_v / n), np.nan)

    def noise_gate(self) -> np.ndarray:
        """Per-arm bool: judged "noise" (all False when the guard is off)."""
        guard = guard_params(self.params)
        if guard is None or not guard.enabled:
            return np.zeros(self.pool.num_categories, dtype=bool)
        with np.errstate(invalid="ignore", divide="ignore"):
            mix = np.where(self.mix_n > 0, self.mix_s / self.mix_n, 0.0)
            t, phi = self._t_phi()
        t = np.fmax(t, 0.0)  # t >= 0; no pairs (nan): 0
        # no evidence (nan) counts as signal (isnan and fmax, not nan_to_num: a tenth of its cost)
        signal = np.isnan(phi) | (phi > 1 + guard.z * np.sqrt(2 / np.maximum(self.disp_n, 1)))
        progress = (self.pair_n >= guard.min_pairs) & (t >= guard.z)
        return (self.disp_n >= guard.min_groups) & (mix >= guard.mixed) & ~signal & ~progress

    def gated_arm_probs(self) -> np.ndarray:
        """arm_probs() with the guard applied: arms judged noise capped at floor / arms, the rest of the mass
        shared by the others in proportion (the probabilities the next draw uses)."""
        p = np.asarray(self.arm_probs(), dtype=np.float64)
        p = p / p.sum() if p.sum() > 0 else np.full(len(p), 1.0 / max(len(p), 1))
        noisy = self.noise_gate()
        if not noisy.any() or noisy.all():
            return p
        capped = np.minimum(p[noisy], self.params.noise_guard.floor / len(p))
        rest = p[~noisy]
        out = p.copy()
        out[noisy] = capped
        out[~noisy] = (1 - capped.sum()) * (rest / rest.sum() if rest.sum() > 0 else 1.0 / len(rest))
        return out

    def gated_candidates(self, m: int, exclude: np.ndarray | None, noisy: np.ndarray) -> np.ndarray:
        """random_candidates(), with the arms judged noise (`noisy`) drawn `floor` times as often as their
        size says."""
        w = self.pool.arm_sizes() * np.where(noisy, self.params.noise_guard.floor, 1.0)
        counts = self.rng.multinomial(m, w / w.sum())
        members = self.pool.arm_members()
        parts = [self.random_candidates(int(c), exclude, members=members[a]) for a, c in enumerate(counts) if c]
        return self.rng.permutation(np.concatenate(parts)) if parts else EMPTY

    def gated_choose(self, n: int, exclude: np.ndarray | None, noisy: np.ndarray) -> np.ndarray:
        """An item-level rule's choice of n, with the arms judged noise held to the guard's cap."""
        cand = self.gated_candidates(self.candidate_count(n), exclude, noisy)
        picked = self.choose(min(n, len(cand)), cand)
        # an item-level rule prefers noise items (p ~ 0.5, high variance) over the others: hold their picks to
        # the guard's cap as well, and fill the rest with the rule's choice among the other candidates
        cat = self.pool.category
        share = self.pool.arm_sizes()[noisy].sum() / max(self.pool.size, 1)
        quota = int(np.floor(n * self.params.noise_guard.floor * share + self.rng.random()))
        bad = noisy[cat[picked]]
        if bad.sum() <= quota:
            return picked
        good = picked[~bad]
        rest = cand[~noisy[cat[cand]] & ~np.isin(cand, good)]
        extra = self.choose(min(n - len(good) - quota, len(rest)), rest)
        short = max(0, n - len(good) - len(extra))  # too few others: the noise arms fill the rest
        return np.concatenate([good, extra, picked[bad][:short]])
