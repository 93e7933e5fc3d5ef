"""One per-prompt predictive state (DESIGN §3, "Next layers"; issue 17): what the service believes about every
item's pass rate under the current policy, and how likely a group of it is to be degenerate.

Per item (numpy arrays over the pool's dense item index):

    alpha, beta   Beta posterior over the pass rate, prior Beta(alpha0, beta0) = Beta(1, 1)
    streak        consecutive degenerate groups at the item's latest visits (0 after a mixed group)
    seen          policy version of the item's latest evidence (-1: never seen)
    last          mean reward of the item's latest group (nan: never seen)
    count         samples in the item's latest group

plus one scalar, `version`: the newest policy version observed.

**Empirical-Bayes prior per arm** (when the store holds `arm_state(prefix)` and the item -> arm map is given).
An unseen or once-seen item borrows strength from its level: its prior is Beta(alpha0_k, beta0_k), fitted by the
method of moments to the latest group of every seen item of its arm k, weighted w_i = lambda^(version - seen_i)
(the item's evidence decay). With m_i = s_i / n_i, W = sum w, mean 1/n: h = sum (w / n) / W,

    mu_k    = (sum w s + alpha0) / (sum w n + alpha0 + beta0)             (pooled rate, smoothed by the flat prior)
    V_m     = W / (W - 1) * (sum w m^2 / W - (sum w m / W)^2)             (spread of the items' group means)
    var_p   = (V_m - mu (1 - mu) h) / (1 - h)                            (minus the binomial noise of a group)
    kappa_k = mu (1 - mu) / var_p - 1, clipped to [KAPPA_MIN, 1 / h]     (at most one (harmonic mean) group)
    alpha0_k, beta0_k = mu kappa, (1 - mu) kappa

(the flat prior where W < 2 or every group has one sample). The cap keeps the prior honest when the policy moves:
the level's groups were measured on other items, some of them under older policies, so the level tells an item
at most what one group of its own would (without it a level that failed everything early, var_p = 0, would hold
its items at p ~ 0 against many groups of new evidence once the policy reaches it).

The six weighted sums per arm are updated in O(touched) per fold: an item's old latest group is subtracted at its
decayed weight and the new one added; when `version` advances all sums are multiplied by lambda^dv (O(arms)). An
item's posterior is its arm's prior plus its own decayed evidence: alpha0_k + (alpha_i - alpha0) decayed, likewise
beta. The fit is O(arms) per read.

**Evidence decays per policy version.** The evidence (alpha - alpha0, beta - beta0) is multiplied by lambda for
every policy version between the version it was observed at and the version it is read at:

    e_i(V) = sum_j lambda^(V - v_j) s_j          (s_j: the evidence of group j, v_j: its policy version)

Stored arrays hold e_i at `seen_i`; a read at version V (default: `version`) returns
alpha0 + lambda^(V - seen_i) (alpha_i - alpha0) without writing, and `observe` writes only the items it touches,
so a step costs O(touched) whatever the pool size. A group older than the item's latest evidence (a late
result) is added with weight lambda^(seen_i - v): the sum above does not depend on the order in which groups
arrive (exactly, up to float rounding; strategies fold a step in a canonical order, so they are bit-exact).
lambda = 1 keeps all evidence (MoPPS' config); MoPPS' scripts use 0.5 *per visit*, which is much stronger.

**Rewards.** Binary rewards add s = successes and f = n - s. Continuous rewards in [0, 1] add the reward sum as
fractional successes and (n - sum) as fractional failures (a fractional Beta: the posterior mean is then the
mean reward, and the predicted degenerate probability treats each sample as a Bernoulli draw with that mean,
which over-estimates the variance of partial-credit groups). Sums are clipped to [0, n].

**Predictions.**

    pass_rate(i)        = alpha / (alpha + beta)                             (posterior mean)
    p_degenerate(i, G)  = [B(alpha + G, beta) + B(alpha, beta + G)] / B(alpha, beta)
                        = prod_{j<G} (alpha + j)/(alpha + beta + j) + prod_{j<G} (beta + j)/(alpha + beta + j)

the Beta-Binomial probability that G samples all succeed or all fail. For integer G the log-Beta ratio is
a product of G factors, computed vectorised as a sum of logs (no lgamma, which numpy lacks); for G > 64
it uses a vectorised lgamma (`curriculum.betabinom`).

The arrays live in a *store*: by default this object itself; a strategy passes itself and a prefix, so the
arrays are the strategy's `item_state` (`item_state(prefix)`) and the step-ledger machinery of
`curriculum.strategy.Strategy` (checkpoint, rewind, snapshot, growth) covers them with no extra code.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np

from curriculum.betabinom import degenerate_probability
from curriculum.items import grow as _grow
from curriculum.noise_guard import powers

#: per-item arrays: name -> (dtype, fill); alpha/beta fills are the prior and are set per instance
FIELDS: dict[str, tuple[Any, Any]] = {"alpha": (np.float64, 1.0), "beta": (np.float64, 1.0),
                                      "streak": (np.int64, 0), "seen": (np.int64, -1), "last": (np.float64, np.nan),
                                      "count": (np.float64, 0.0)}
#: per-arm sums of the empirical-Bayes prior (weight w = lambda^(version - seen_i) per seen item, its latest group
#: with n samples, mean m): sum w, sum w n, sum w n m, sum w m, sum w m^2, sum w / n
ARM_FIELDS = ("arm_w", "arm_wn", "arm_ws", "arm_s1", "arm_s2", "arm_h")
SCALARS: dict[str, Any] = {"version": -1}
POWER_TABLE_MAX = 1 << 16  # ages (policy versions) up to this read lambda^age from a table
#: a strategy's `prior` parameter: its level's fitted prior (arm), or the flat Beta(alpha0, beta0)
Prior = Literal["arm", "flat"]
PRIOR_DOC = "Beta prior of an item: its level's, fitted by moments (arm), or Beta(1, 1) (flat)"
KAPPA_MIN = 0.1  # numerical floor of the fitted prior strength alpha0 + beta0 (its limit 0: every item at 0 or 1)

def _as_rewards(x) -> np.ndarray:
    """An array, or a list of groups of different sizes (nan-padded to a matrix)."""
    if isinstance(x, np.ndarray) or not len(x) or np.isscalar(x[0]):
        return np.asarray(x, dtype=np.float64)
    out = np.full((len(x), max(len(r) for r in x)), np.nan)
    for k, r in enumerate(x):
        out[k, : len(r)] = r
    return out


def item_state(prefix: str, prior: tuple[float, float] = (1.0, 1.0)) -> dict[str, tuple[Any, Any]]:
    """The `item_state` entries a strategy declares to hold a PredictiveState under `prefix`."""
    fills = {"alpha": prior[0], "beta": prior[1]}
    return {prefix + n: (dt, fills.get(n, fill)) for n, (dt, fill) in FIELDS.items()}


def arm_state(prefix: str) -> dict[str, tuple[Any, Any]]:
    """The `arm_state` entries a strategy declares for the per-arm empirical-Bayes prior (rewound with its steps)."""
    return {prefix + n: (np.float64, 0.0) for n in ARM_FIELDS}


def fit_arm_prior(sums: dict[str, np.ndarray], flat: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Method-of-moments Beta(alpha0_k, beta0_k) per arm from its items' latest groups (see the module docstring);
    the flat prior where an arm has under 2 items' worth of weight or only 1-sample groups."""
    w, wn = sums["arm_w"], sums["arm_wn"]
    a0, b0 = flat
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = (sums["arm_ws"] + a0) / (wn + a0 + b0)  # the level's pass rate, smoothed by the flat prior
        m1 = sums["arm_s1"] / w
        var_m = (sums["arm_s2"] / w - m1**2) * w / (w - 1)  # between-item variance of group means (unbiased)
        h = sums["arm_h"] / w  # mean 1/n: the binomial part of var_m is mu (1 - mu) h
        var_p = (var_m - mu * (1 - mu) * h) / (1 - h)
        kappa = mu * (1 - mu) / np.maximum(var_p, 0) - 1  # Beta variance mu (1 - mu) / (kappa + 1)
        cap = np.maximum(1 / h, KAPPA_MIN)  # one group's worth: the level says no more than an own group would
        kappa = np.clip(np.nan_to_num(kappa, nan=cap, posinf=cap), KAPPA_MIN, cap)
    ok = (w >= 2) & (h < 1)
    return np.where(ok, mu * kappa, a0), np.where(ok, (1 - mu) * kappa, b0)


class _Holder:
    """The default store: plain attributes."""


def of_strategy(strategy: Any, decay: float, prior: str = "arm", prefix: str = "pred_") -> PredictiveState:
    """The state a strategy holds under `prefix` (its item_state / arm_state), with its pool's arms (prior 'arm')."""
    arms = strategy.pool.category if prior == "arm" else None
    return PredictiveState(decay=decay, store=strategy, prefix=prefix, arms=arms)


class PredictiveState:
    """Beta posterior, degenerate streak, last version and last mean per item; see the module docstring.

    `decay` is lambda per policy version; `prior` is (alpha0, beta0). Deterministic: `thompson` draws from
    the generator it is given, nothing else is random."""

    def __init__(self, n: int = 0, *, decay: float = 1.0, prior: tuple[float, float] = (1.0, 1.0),
                 store: Any = None, prefix: str = "", arms: np.ndarray | None = None) -> None:
        if not 0 < decay <= 1:
            raise ValueError("decay must be in (0, 1]")
        self.decay = float(decay)
        self.alpha0, self.beta0 = float(prior[0]), float(prior[1])
        self._p = prefix
        if store is None:
            store = _Holder()
            for name, (dt, fill) in item_state(prefix, prior).items():
                setattr(store, name, np.full(n, fill, dtype=dt))
            if arms is not None:
                k = int(np.max(arms)) + 1 if len(arms) else 0
                for name in arm_state(prefix):
                    setattr(store, name, np.zeros(k))
        self._s = store
        # the empirical-Bayes prior per arm: on when the item's arms are given and the store holds the arm sums
        self.arms = arms if arms is not None and hasattr(store, prefix + ARM_FIELDS[0]) else None
        for name, v in SCALARS.items():
            if not hasattr(store, prefix + name):
                setattr(store, prefix + name, v)

    # -- the arrays (read through the store, so a strategy's rewinds and loads are seen) ---------------
    def _get(self, name: str) -> Any:
        return getattr(self._s, self._p + name)

    alpha = property(lambda self: self._get("alpha"))
    beta = property(lambda self: self._get("beta"))
    streak = property(lambda self: self._get("streak"))
    seen = property(lambda self: self._get("seen"))
    last = property(lambda self: self._get("last"))
    count = property(lambda self: self._get("count"))

    @property
    def version(self) -> int:
        return int(self._get("version"))

    @version.setter
    def version(self, v: int) -> None:
        setattr(self._s, self._p + "version", int(v))

    @property
    def size(self) -> int:
        return len(self.alpha)

    def grow(self, n: int, arms: np.ndarray | None = None) -> None:
        """Extend the arrays to n items (new items get the prior; standalone: `arms` is the new item -> arm map)."""
        for name, (_dt, fill) in item_state(self._p, (self.alpha0, self.beta0)).items():
            setattr(self._s, name, _grow(getattr(self._s, name), n, fill))
        if arms is not None and self.arms is not None:
            self.arms = arms
            for name in arm_state(self._p):
                setattr(self._s, name, _grow(getattr(self._s, name), int(np.max(arms)) + 1, 0.0))

    def arm_sums(self) -> dict[str, np.ndarray]:
        return {n: self._get(n) for n in ARM_FIELDS}

    # -- evidence --------------------------------------------------------------------------------
    def observe(self, indices, rewards_or_sums, counts=None, versions=None) -> None:
        """Fold groups in: `rewards_or_sums` is (n, G) nan-padded rewards, or (n,) reward sums with `counts`;
        `versions` the policy version of each group (default: the current version, 0 if none yet). Groups of
        the same item are applied in the order given. A 1-D input has no per-sample spread, so a group is
        counted degenerate when its sum is 0 or its count (binary rewards)."""
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) == 0:
            return
        r = _as_rewards(rewards_or_sums)
        if r.ndim == 2:
            valid = ~np.isnan(r)
            cnt = valid.sum(axis=1).astype(np.float64)
            s = np.where(valid, r, 0.0).sum(axis=1)
            hi = np.where(valid, r, -np.inf).max(axis=1)
            lo = np.where(valid, r, np.inf).min(axis=1)
            degen = hi - lo <= 1e-12
        else:
            if counts is None:
                raise ValueError("reward sums need counts")
            cnt = np.asarray(counts, dtype=np.float64).reshape(len(idx))
            s = r.reshape(len(idx))
            degen = (s <= 1e-12) | (s >= cnt - 1e-12)
        self._observe(idx, s, cnt, degen, versions)

    def observe_batch(self, batch: Any) -> None:
        """observe(batch.item, batch.rewards, versions=batch.policy_version) from the group statistics the
        EventBatch has derived already (the same values), without ranking repeats where items are unique."""
        if len(batch):
            self._observe(batch.item, batch.reward_sum, batch.count.astype(np.float64), batch.degenerate,
                          batch.policy_version, batch.unique_items)

    def _observe(self, idx, s, cnt, degen, versions, unique: bool = False) -> None:
        self._s.__dict__.pop("_prior_" + self._p, None)  # the arm sums change below
        mean = s / np.maximum(cnt, 1)
        s = np.clip(s, 0.0, cnt)
        v = (np.full(len(idx), max(self.version, 0), dtype=np.int64) if versions is None
             else np.broadcast_to(np.asarray(versions, dtype=np.int64), idx.shape))
        new = max(self.version, int(v.max()))
        if self.arms is not None and self.decay < 1 and self.version >= 0 and new > self.version:
            for name in ARM_FIELDS:  # the arm sums are held at `version`: age them with it
                self._get(name)[:] *= self.decay ** (new - self.version)
        self.version = new
        if unique:
            self._apply(idx, s, cnt - s, v, degen, mean)
            return
        # an item repeated in the batch: apply its groups in rounds (k-th occurrence in round k), in order
        order = np.argsort(idx, kind="stable")
        si = idx[order]
        start = np.r_[True, si[1:] != si[:-1]]
        first = np.maximum.accumulate(np.where(start, np.arange(len(si)), 0))
        rank = np.empty(len(idx), dtype=np.int64)
        rank[order] = np.arange(len(si)) - first
        for k in range(int(rank.max()) + 1):
            m = rank == k if k or rank.max() else slice(None)
            self._apply(idx[m], s[m], cnt[m] - s[m], v[m], degen[m], mean[m])

    def _apply(self, i, s, f, v, degen, mean) -> None:
        """One group per item (i unique)."""
        a, b, seen = self.alpha, self.beta, self.seen
        old = seen[i]
        newer = v > old
        if self.decay < 1:
            # evidence at seen -> at max(seen, v); a late group is weighted down instead
            dk = self.decay ** np.where(newer & (old >= 0), v - old, 0)
            w = self.decay ** np.where(newer, 0, old - v)
            a[i] = self.alpha0 + dk * (a[i] - self.alpha0) + w * s
            b[i] = self.beta0 + dk * (b[i] - self.beta0) + w * f
        else:
            a[i] += s
            b[i] += f
        if self.arms is not None:
            self._arm_swap(i, old, s, f, np.maximum(old, v))
        seen[i] = np.maximum(old, v)
        st = self.streak
        st[i] = np.where(degen, st[i] + 1, 0)
        self.last[i] = mean
        self.count[i] = s + f

    def _arm_swap(self, i, old, s, f, v_new) -> None:
        """Replace each item's latest group in its arm's sums (the old one at its decayed weight, if any)."""
        arm = np.asarray(self.arms)[i]
        n_old = self.count[i]
        m_old = np.clip(np.nan_to_num(self.last[i]), 0, 1)
        w_old = np.where((old >= 0) & (n_old > 0), self.decay ** np.maximum(self.version - old, 0), 0.0)
        n = s + f
        m = s / np.maximum(n, 1e-12)
        w = np.where(n > 0, self.decay ** np.maximum(self.version - v_new, 0), 0.0)
        for name, new, prev in (("arm_w", w, w_old), ("arm_wn", w * n, w_old * n_old),
                                ("arm_ws", w * s, w_old * n_old * m_old), ("arm_s1", w * m, w_old * m_old),
                                ("arm_s2", w * m * m, w_old * m_old * m_old),
                                ("arm_h", w / np.maximum(n, 1e-12), w_old / np.maximum(n_old, 1e-12))):
            np.add.at(self._get(name), arm, new - prev)

    # -- reading ----------------------------------------------------------------------------------
    def posterior(self, idx, at: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(alpha, beta) of `idx` with their evidence decayed to version `at` (default: the newest seen)."""
        idx = np.asarray(idx, dtype=np.int64)
        a, b = self.alpha[idx], self.beta[idx]
        if self.decay < 1:
            at = self.version if at is None else int(at)
            seen = self.seen[idx]
            age = np.clip(at - seen, 0, None)
            top = int(age.max()) if len(age) else 0
            # lambda^age from a cached table of powers (the same values as the power itself, without its cost)
            k = (powers(self.decay, top)[age] if top < POWER_TABLE_MAX else self.decay ** age) * (seen >= 0)
            a, b = self.alpha0 + k * (a - self.alpha0), self.beta0 + k * (b - self.beta0)
        if self.arms is None:
            return a, b
        a0, b0 = self.prior(idx)
        return a0 + (a - self.alpha0), b0 + (b - self.beta0)

    def prior(self, idx) -> tuple[np.ndarray, np.ndarray]:
        """(alpha0, beta0) of each item: its arm's fitted prior, or the flat prior (no arms)."""
        idx = np.asarray(idx, dtype=np.int64)
        if self.arms is None:
            return np.full(len(idx), self.alpha0), np.full(len(idx), self.beta0)
        a0, b0 = self._arm_prior()
        arm = np.asarray(self.arms)[idx]
        if len(arm) and arm.max() < len(a0):  # the common case: every arm has its sums (the values below, fewer passes)
            return a0[arm], b0[arm]
        inside = arm < len(a0)  # an arm with no sums yet (the pool grew since the last fold): the flat prior
        arm = np.where(inside, arm, 0)
        return (np.where(inside, a0[arm] if len(a0) else self.alpha0, self.alpha0),
                np.where(inside, b0[arm] if len(b0) else self.beta0, self.beta0))

    def _arm_prior(self) -> tuple[np.ndarray, np.ndarray]:
        """fit_arm_prior of the arm sums, kept on the store until they change (a selection reads it several times):
        observe() drops it; a rewind, load or growth puts new arrays in the store, and the key holds the old ones."""
        key = (*(self._get(n) for n in ARM_FIELDS), self.alpha0, self.beta0)
        hit = self._s.__dict__.get("_prior_" + self._p)
        if hit is None or any(x is not y for x, y in zip(hit[0][:-2], key[:-2])) or hit[0][-2:] != key[-2:]:
            hit = self._s.__dict__["_prior_" + self._p] = (key, fit_arm_prior(dict(zip(ARM_FIELDS, key)), key[-2:]))
        return hit[1]

    def pass_rate(self, idx, at: int | None = None) -> np.ndarray:
        a, b = self.posterior(idx, at)
        return a / (a + b)

    def p_degenerate(self, idx, g: int, at: int | None = None) -> np.ndarray:
        """P(a group of g samples is all successes or all failures) under the Beta-Binomial."""
        return degenerate_probability(*self.posterior(idx, at), g)

    def predict(self, idx, g: int, at: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(pass_rate, p_degenerate) of each item from one posterior evaluation (the same values as the two calls)."""
        a, b = self.posterior(idx, at)
        return a / (a + b), degenerate_probability(a, b, g)

    def thompson(self, idx, rng: np.random.Generator, at: int | None = None) -> np.ndarray:
        """One draw of the pass rate per item from its (decayed) posterior."""
        a, b = self.posterior(idx, at)
        return rng.beta(a, b)

    def age(self, idx, at: int | None = None) -> np.ndarray:
        """Policy versions since each item's latest evidence (a large number where never seen)."""
        at = self.version if at is None else int(at)
        seen = self.seen[np.asarray(idx, dtype=np.int64)]
        return np.where(seen >= 0, at - seen, np.iinfo(np.int64).max // 2)

    def details(self) -> dict:
        """Summary for `describe()` (O(items))."""
        seen = self.seen >= 0
        return {"items_seen": int(seen.sum()), "items_degenerate_streak": int((self.streak > 0).sum()),
                "version": self.version}

    # -- snapshot (only needed standalone: a strategy's store snapshots the arrays itself) ---------------
    def state_dict(self) -> dict:
        arm = ARM_FIELDS if self.arms is not None else ()
        d = {n: getattr(self._s, self._p + n).copy() for n in (*FIELDS, *arm)}
        d.update(version=self.version, decay=self.decay, prior=[self.alpha0, self.beta0])
        return d

    def load_state_dict(self, d: dict) -> None:
        self.decay = float(d["decay"])
        self.alpha0, self.beta0 = (float(x) for x in d["prior"])
        for n, (dt, _) in FIELDS.items():
            setattr(self._s, self._p + n, np.array(d[n], dtype=dt))
        for n in ARM_FIELDS:
            if n in d:
                setattr(self._s, self._p + n, np.array(d[n], dtype=np.float64))
        self.version = int(d["version"])
