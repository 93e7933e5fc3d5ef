"""The one interface every curriculum algorithm implements, and the bookkeeping they share.

A strategy turns observed rewards into the next selection:

    select(n, exclude) -> Selection(indices, num_samples, max_tokens)
    observe(EventBatch)
    state_dict() / load_state_dict()
    describe() -> {"arms": [...], "details": {...}}

Strategies are deterministic given their seed and the sequence of calls; the RNG state is part of the
snapshot.

A step is a policy version (API.md, "A curriculum step"). Every clock — TD updates, moving averages, schedules,
token budgets, staleness — counts policy versions, never observe() calls: with K rollout workers one training
step arrives as K reports, in any order, and the strategy must end up in the same state as if the step had
arrived in one call. The base class guarantees it for every strategy: the open step's evidence is kept (in a
canonical order), and each report of the same version rewinds the state the step changed to its value at the
step's start and folds the step's whole evidence again. `update()` thus always sees "everything this step has
brought so far", which makes one call and K calls (any order) bit-for-bit equal; the cost is O(K x batch)
per step, not O(pool). The first result of a newer version closes the step. Late results (a version older
than the open step) join the open step: they are evidence about a policy at most a few versions old, and
dropping them would waste rollouts already paid for. A version that brings more than `MAX_STEP_GROUPS` groups
(a client that never sets policy_version) is split into steps of that many groups, so cost stays bounded.

Two families share helpers here:

* arm-level strategies (sec, dump, progress) implement `arm_probs()`; the base draws per-arm counts and
  samples uniformly inside each arm without replacement (epoch-wise per arm);
* item-level strategies (filter, pcl, posterior) implement `choose(n, candidates)`, picking n of a set of
  candidate items; standalone they get random candidates from the whole pool, inside `compose` they get
  candidates from the arm that the arm-level strategy drew.
"""
from __future__ import annotations

from abc import ABC
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curriculum.items import ItemPool, grow
from curriculum.events import EventBatch

RECENT = 0.02  # EMA rate for the "recent" per-arm pass rate and selection share (~50-event horizon)
MAX_STEP_GROUPS = 16384  # a version with more groups than this is split into several steps (see above)


class TokenBudget(BaseModel):
    """Train-Long-Think-Short token budget: B(t) = max(B_min, B0 * gamma^floor(t / T)).

    t counts curriculum steps (policy versions). The lease carries B(t) as `max_tokens`; workers may apply it
    as a hard cap or, as the paper does, grade the answer with a length-efficiency term (workers.verifiers:
    `length_shaped`)."""

    model_config = ConfigDict(extra="forbid")
    b0: int = Field(256, ge=1, description="initial budget B0 in tokens (256 in the paper)")
    b_min: int = Field(1, ge=1, description="floor B_min in tokens (the paper's max(1, ...))")
    gamma: float = Field(0.7, gt=0, le=1, description="decay factor per period")
    period: int = Field(100, ge=1, description="steps T (policy versions) between decays")

    @model_validator(mode="after")
    def _order(self) -> "TokenBudget":
        if self.b_min > self.b0:
            raise ValueError("token_budget.b_min must be <= token_budget.b0")
        return self

    def at(self, t: int) -> int:
        return int(max(self.b_min, self.b0 * self.gamma ** (t // self.period)))


class StrategyParams(BaseModel):
    """Base of every strategy's hyperparameters; unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    token_budget: TokenBudget | None = Field(None, description="optional token-budget schedule (Train-Long-Think-Short)")


class NoiseGuard(BaseModel):
    """No-progress discount — our addition, in no paper (`enabled: false` gives the paper-faithful rule).

    Strategies that score arms or items by reward variance, |advantage| or p ~ 0.5 are drawn to prompts whose
    rewards are noise (partial-credit scorers on a small model, ambiguous references, flaky verifiers): their
    groups are rarely degenerate, yet training on them teaches nothing. Two kinds of evidence, both per arm over
    its last ~`horizon` groups (exponential forgetting, lambda = 1 - 1/horizon):

    * **Item signal.** If an arm's group means vary no more than sampling alone makes them vary, its prompts
      carry no information about the policy: the dispersion ratio
          phi = Var_w(mean_g) / E_w[s_g^2 / (G_g - 1)]       (observed between-group variance of the means
                                                              over the variance a group mean has by sampling)
      is ~1 under noise (whatever the prompt, a coin), and > 1 when prompts differ in difficulty or the arm's
      pass rate drifts as the policy trains. "Signal" = phi > 1 + z sqrt(2 / N).
    * **Progress.** Each time an item is measured again, d = mean_now - mean_at_its_last_visit;
      t = |sum d| / sqrt(sum d^2) is ~|N(0, 1)| when nothing moves and grows like sqrt(pairs) under learning
      (or forgetting).

    An arm with >= `min_groups` groups, mostly mixed groups (share >= `mixed`: the variance a variance-chaser
    loves), no item signal, and no progress (fewer than `min_pairs` pairs, or t < `z`) is judged "noise": its
    draw probability is capped at `floor` x its uniform share (1 / arms; for candidate draws, `floor` x its
    size share) until the evidence changes. Arms whose groups are mostly degenerate are never judged
    (variance-chasers avoid them already, and an out-of-reach arm must stay eligible). A learnable level that
    has plateaued keeps its item signal (its prompts differ in difficulty), so it is not starved; an arm of
    prompts that are all equally hard and not (yet) improving is indistinguishable from noise and is capped
    until its revisits show progress."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="apply the discount (false: the paper's rule)")
    horizon: int = Field(512, ge=8, description="groups (and revisits) of an arm over which the evidence is kept")
    min_groups: int = Field(32, ge=2, description="groups an arm needs before it can be judged")
    min_pairs: int = Field(32, ge=2, description="revisits that make the progress test count")
    z: float = Field(2.0, ge=0, description="significance (standard errors) of item signal and of progress")
    mixed: float = Field(0.5, ge=0, le=1, description="only arms with at least this share of mixed groups are judged")
    floor: float = Field(0.15, gt=0, le=1, description="cap of a judged arm's draw probability, relative to its uniform share")


class GuardedParams(StrategyParams):
    """Hyperparameters of a strategy that chases variance / |advantage| / p ~ 0.5, with its noise guard."""

    noise_guard: NoiseGuard = Field(default_factory=NoiseGuard, description="no-progress discount (see NoiseGuard)")


@dataclass
class Selection:
    indices: np.ndarray  # int64, unique
    num_samples: np.ndarray  # int64, rollouts to spend per item
    max_tokens: int | None = None

    def __len__(self) -> int:
        return len(self.indices)


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
            ok = np.ones(len(chunk), dtype=bool)
            if exclude is not None:
                ok &= ~exclude[chunk]
            if taken is not None:
                ok &= ~taken[chunk]
            pos = np.flatnonzero(ok)
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
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def state_dict(self) -> dict:
        return {"order": self.order.copy(), "offsets": self.offsets.copy(), "cursor": self.cursor.copy(),
                "n_items": self.n_items}

    def load_state_dict(self, d: dict) -> None:
        self.order, self.offsets, self.cursor = d["order"].copy(), d["offsets"].copy(), d["cursor"].copy()
        self.n_items = int(d["n_items"])


class Strategy(ABC):
    """Base class: common statistics, pool growth, state (de)serialisation, `describe()`.

    Subclasses declare their per-item and per-arm state in `item_state` / `arm_state`
    (name -> (dtype, fill)); those arrays are always exactly pool- / arm-sized, grow with the pool and go into the snapshot automatically,
    as do the attributes named in `state_attrs`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    item_state: ClassVar[dict[str, tuple[Any, Any]]] = {}
    arm_state: ClassVar[dict[str, tuple[Any, Any]]] = {}
    state_attrs: ClassVar[tuple[str, ...]] = ()
    #: True for strategies that draw arms explicitly (their `weight` is the draw probability)
    draws_arms: ClassVar[bool] = False

    _COMMON_ITEM = {"n_groups": (np.int64, 0), "n_samples": (np.int64, 0), "reward_sum": (np.float64, 0.0),
                    "last_mean": (np.float64, np.nan)}
    _COMMON_ARM = {"arm_events": (np.int64, 0), "arm_pass": (np.float64, np.nan), "arm_share": (np.float64, 0.0),
                   # noise guard evidence (NoiseGuard): discounted sums of paired differences, mixed groups
                   "pair_s": (np.float64, 0.0), "pair_q": (np.float64, 0.0), "pair_n": (np.float64, 0.0),
                   "mix_s": (np.float64, 0.0), "mix_n": (np.float64, 0.0),
                   "disp_m1": (np.float64, 0.0), "disp_m2": (np.float64, 0.0), "disp_v": (np.float64, 0.0),
                   "disp_n": (np.float64, 0.0)}
    #: arm arrays that select() changes (not part of a step's rewind)
    _SELECT_ARM = ("arm_share",)
    #: `state_attrs` that update() changes (rewound at each report of the open step); default: all of them
    step_attrs: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, pool: ItemPool, params: dict | StrategyParams | None = None, *, seed: int = 0,
                 group_size: int = 8) -> None:
        self.pool = pool
        self.params = params if isinstance(params, self.Params) else self.Params.model_validate(params or {})
        self.seed = seed
        self.group_size = group_size
        self.rng = np.random.default_rng(seed)
        self.steps = 0  # curriculum steps begun (policy versions seen; the open one included): the clock
        self.version = -1  # policy version of the open step (-1: none yet)
        self.selections = 0  # select() calls
        self.events = 0
        self.degenerate = 0
        self._step: EventBatch | None = None  # the open step's evidence, canonical order
        self._start: dict[str, Any] = {}  # what the open step changed, as it was at the step's start
        self._touched = np.zeros(0, dtype=np.int64)  # items the open step's evidence touches
        self.sampler = ArmSampler()
        self._n_items = self._n_arms = 0
        for name, (dt, fill) in {**self._COMMON_ITEM, **self.item_state}.items():
            setattr(self, name, np.full(0, fill, dtype=dt))
        for name, (dt, fill) in {**self._COMMON_ARM, **self.arm_state}.items():
            setattr(self, name, np.full(0, fill, dtype=dt))
        self.setup()
        self.sync()

    # -- hooks for subclasses ------------------------------------------------------------------
    def setup(self) -> None:
        """Initialise state that is not a per-item / per-arm array."""

    def on_grow(self, old_items: int, old_arms: int) -> None:
        """Called after the pool grew (new items/arms already have their fill values)."""

    def update(self, batch: EventBatch) -> None:
        """The strategy's own update rule (common statistics are already updated)."""

    def arm_probs(self) -> np.ndarray:
        """Arm-level strategies: probability of drawing each arm next."""
        raise NotImplementedError

    def arm_values(self) -> np.ndarray | None:
        """The strategy's own score per arm (Q, UCB, LP ...), or None."""
        return None

    def choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        """Item-level strategies: pick n of `candidates` (unique, eligible item indices)."""
        raise NotImplementedError

    def candidate_count(self, n: int) -> int:
        """How many random candidates `choose` should see for a selection of n."""
        return 4 * n

    def allocate(self, indices: np.ndarray) -> np.ndarray:
        """Rollouts per selected item; default: the experiment's group size for each."""
        return np.full(len(indices), self.group_size, dtype=np.int64)

    def details(self) -> dict:
        return {}

    # -- the interface -------------------------------------------------------------------------
    def select(self, n: int, exclude: np.ndarray | None = None) -> Selection:
        """Up to n unique items, none of them marked in `exclude` (a bool mask over the pool)."""
        self.sync()
        if exclude is not None and len(exclude) < self.pool.size:
            exclude = grow(exclude.astype(bool), self.pool.size, False)[: self.pool.size]
        idx = self._select(max(0, int(n)), exclude) if n > 0 and self.pool.size else np.zeros(0, np.int64)
        idx = np.asarray(idx, dtype=np.int64)
        self.selections += 1
        if len(idx):
            share = np.bincount(self.pool.category[idx], minlength=self.pool.num_categories) / len(idx)
            self.arm_share += RECENT * 5 * (share - self.arm_share)
        budget = self.params.token_budget
        return Selection(idx, self.allocate(idx), budget.at(self.steps) if budget else None)

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        if self.draws_arms:
            return self.draw_by_arms(n, self.gated_arm_probs(), exclude)
        noisy = self.noise_gate()
        if not noisy.any() or noisy.all():  # all arms alike: nothing to prefer
            cand = self.random_candidates(self.candidate_count(n), exclude)
            return self.choose(min(n, len(cand)), cand)
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

    def observe(self, batch: EventBatch) -> None:
        """Fold reported groups in. Versions newer than the open step close it (in version order); older
        ones join the open step (the late rule); see the module docstring."""
        self.sync()
        if len(batch) == 0:
            return
        pv = batch.policy_version
        lo, hi = int(pv.min()), int(pv.max())
        if hi <= self.version:  # the common case with many workers: all of it belongs to the open step
            self._add_to_step(batch)
            return
        late = pv <= self.version
        if late.any():
            self._add_to_step(batch.subset(late))
        for v in ([hi] if lo == hi else np.unique(pv[~late]).tolist()):
            self._close_step()
            self.version = int(v)
            self._add_to_step(batch if lo == hi else batch.subset(pv == v))

    def _close_step(self) -> None:
        self._step, self._start, self._touched = None, {}, np.zeros(0, dtype=np.int64)

    def _add_to_step(self, b: EventBatch) -> None:
        room = MAX_STEP_GROUPS - (0 if self._step is None else len(self._step))
        if len(b) > room:  # split, in report order, into steps of MAX_STEP_GROUPS
            if room > 0:
                self._add_to_step(b.subset(np.arange(len(b)) < room))
            self._close_step()
            self._add_to_step(b.subset(np.arange(len(b)) >= room))
            return
        if self._step is None:
            self._checkpoint()
        else:
            self._rewind()
        self._remember(np.setdiff1d(b.item, self._touched))
        self._step = b.canonical() if self._step is None else EventBatch.concat([self._step, b]).canonical()
        self._fold(self._step)

    # what a step changes: per-arm arrays, `step_attrs`, counters, and per-item arrays at the step's items
    def _item_names(self) -> list[str]:
        return [*self._COMMON_ITEM, *self.item_state]

    def _arm_names(self) -> list[str]:
        return [n for n in (*self._COMMON_ARM, *self.arm_state) if n not in self._SELECT_ARM]

    def _checkpoint(self) -> None:
        """A step starts: count it, and remember everything its fold may change except per-item values (see
        _remember)."""
        self.steps += 1
        attrs = self.state_attrs if self.step_attrs is None else self.step_attrs
        self._start = {"arm": {n: getattr(self, n).copy() for n in self._arm_names()},
                       "attr": {n: _copy(getattr(self, n)) for n in attrs},
                       "events": self.events, "degenerate": self.degenerate, "items": {}}
        for n in self._item_names():
            self._start["items"][n] = getattr(self, n)[:0].copy()

    def _remember(self, items: np.ndarray) -> None:
        """Per-item values of items the step touches for the first time (still their step-start values);
        `_touched` lists the items (sorted) in the same order as the saved rows."""
        saved = self._start["items"]
        touched = np.concatenate([self._touched, items])
        order = np.argsort(touched, kind="stable")  # kept sorted: the state must not depend on report order
        for n in self._item_names():
            saved[n] = np.concatenate([saved[n], getattr(self, n)[items]])[order]
        self._touched = touched[order]

    def _rewind(self) -> None:
        """Put back what the open step changed, so its evidence can be folded again as a whole."""
        st = self._start
        for n, v in st["arm"].items():
            setattr(self, n, grow(v.copy(), self.pool.num_categories, {**self._COMMON_ARM, **self.arm_state}[n][1]))
        for n, v in st["attr"].items():
            setattr(self, n, _copy(v))
        self.events, self.degenerate = st["events"], st["degenerate"]
        for n in self._item_names():
            getattr(self, n)[self._touched] = st["items"][n]

    def _fold(self, batch: EventBatch) -> None:
        """Common statistics, the noise guard, then the strategy's own update, for one step's evidence."""
        it = batch.item
        before = self.last_mean[it].copy()
        np.add.at(self.n_groups, it, 1)
        np.add.at(self.n_samples, it, batch.count)
        np.add.at(self.reward_sum, it, batch.reward_sum)
        self.last_mean[it] = batch.mean
        cat = self.pool.category[it]
        k = np.bincount(cat, minlength=self.pool.num_categories)
        s = np.bincount(cat, weights=batch.mean, minlength=self.pool.num_categories)
        seen = k > 0
        first = seen & np.isnan(self.arm_pass)
        self.arm_pass[first] = s[first] / k[first]
        rate = 1 - (1 - RECENT) ** k[seen]
        self.arm_pass[seen] += rate * (s[seen] / k[seen] - self.arm_pass[seen])
        self.arm_events += k
        self.events += len(batch)
        self.degenerate += int(batch.degenerate.sum())
        self._guard_fold(cat, batch, before)
        self.update(batch)

    def _guard_fold(self, cat: np.ndarray, batch: EventBatch, before: np.ndarray) -> None:
        """Add the step's paired differences and mixed flags to each arm's discounted sums (NoiseGuard).
        `before` holds each group's item mean at its previous visit (nan: first visit). Rows are aged in
        their (canonical) order within each arm: the newest has age 0."""
        guard = getattr(self.params, "noise_guard", None) or NoiseGuard()
        lam = 1.0 - 1.0 / guard.horizon
        d = batch.mean - before
        paired = ~np.isnan(d)
        decay, w = _discount(cat, lam, self.pool.num_categories)
        a = self.pool.num_categories
        self.mix_s = decay * self.mix_s + np.bincount(cat, weights=w * ~batch.degenerate, minlength=a)
        self.mix_n = decay * self.mix_n + np.bincount(cat, weights=w, minlength=a)
        multi = batch.count > 1  # a group of one says nothing about its own sampling variance
        if multi.any():
            dc, m = cat[multi], batch.mean[multi]
            decay, w = _discount(dc, lam, a)
            v = batch.std[multi] ** 2 / (batch.count[multi] - 1)  # unbiased variance of a group mean
            self.disp_n = decay * self.disp_n + np.bincount(dc, weights=w, minlength=a)
            self.disp_m1 = decay * self.disp_m1 + np.bincount(dc, weights=w * m, minlength=a)
            self.disp_m2 = decay * self.disp_m2 + np.bincount(dc, weights=w * m**2, minlength=a)
            self.disp_v = decay * self.disp_v + np.bincount(dc, weights=w * v, minlength=a)
        if paired.any():
            pc, dp = cat[paired], d[paired]
            decay, w = _discount(pc, lam, a)
            self.pair_s = decay * self.pair_s + np.bincount(pc, weights=w * dp, minlength=a)
            self.pair_q = decay * self.pair_q + np.bincount(pc, weights=w * dp**2, minlength=a)
            self.pair_n = decay * self.pair_n + np.bincount(pc, weights=w, minlength=a)

    def progress_t(self) -> np.ndarray:
        """Per-arm progress statistic t = |S| / sqrt(Q) of the noise guard (nan without pairs)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.pair_q > 0, np.abs(self.pair_s) / np.sqrt(self.pair_q), np.nan)

    def dispersion(self) -> np.ndarray:
        """Per-arm dispersion ratio phi of the noise guard (nan without groups of two or more)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            n = self.disp_n
            between = self.disp_m2 / n - (self.disp_m1 / n) ** 2
            return np.where(n > 0, between / (self.disp_v / n), np.nan)

    def noise_gate(self) -> np.ndarray:
        """Per-arm bool: judged "noise" by the noise guard (all False when it is off)."""
        guard = getattr(self.params, "noise_guard", None)
        if guard is None or not guard.enabled:
            return np.zeros(self.pool.num_categories, dtype=bool)
        with np.errstate(invalid="ignore", divide="ignore"):
            mix = np.where(self.mix_n > 0, self.mix_s / self.mix_n, 0.0)
            t = np.nan_to_num(self.progress_t(), nan=0.0)
            signal = np.nan_to_num(self.dispersion(), nan=np.inf) > 1 + guard.z * np.sqrt(2 / np.maximum(self.disp_n, 1))
        progress = (self.pair_n >= guard.min_pairs) & (t >= guard.z)
        return (self.disp_n >= guard.min_groups) & (mix >= guard.mixed) & ~signal & ~progress

    def gated_arm_probs(self) -> np.ndarray:
        """arm_probs() with the noise guard applied: arms judged noise capped at floor / arms, the rest of the
        mass shared by the others in proportion (the probabilities the next draw uses)."""
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
        """random_candidates(), with the arms judged noise (`noisy`, from noise_gate()) drawn `floor` times as
        often as their size says."""
        w = self.pool.arm_sizes() * np.where(noisy, self.params.noise_guard.floor, 1.0)
        counts = self.rng.multinomial(m, w / w.sum())
        members = self.pool.arm_members()
        parts = [self.random_candidates(int(c), exclude, members=members[a]) for a, c in enumerate(counts) if c]
        return self.rng.permutation(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def check_params(self, updates: dict) -> StrategyParams:
        """Validate a partial update of the hyperparameters without applying it (raises ValueError)."""
        return self.Params.model_validate({**self.params.model_dump(), **updates})

    def set_params(self, updates: dict) -> StrategyParams:
        """Validate and apply a partial update of the hyperparameters (all-or-nothing)."""
        self.params = self.check_params(updates)
        return self.params

    # -- shared sampling helpers ---------------------------------------------------------------
    def sync(self) -> None:
        """Grow per-item / per-arm arrays to the pool's size."""
        n, a = self.pool.size, self.pool.num_categories
        if n == self._n_items and a == self._n_arms:
            return
        for name, (dt, fill) in {**self._COMMON_ITEM, **self.item_state}.items():
            setattr(self, name, grow(getattr(self, name), n, fill))
        for name, (dt, fill) in {**self._COMMON_ARM, **self.arm_state}.items():
            setattr(self, name, grow(getattr(self, name), a, fill))
        old = (self._n_items, self._n_arms)
        self._n_items, self._n_arms = n, a
        self.on_grow(*old)

    def pass_rate(self) -> np.ndarray:
        """Observed mean reward of every item (nan where unseen)."""
        ns = self.n_samples
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ns > 0, self.reward_sum / ns, np.nan)

    def random_candidates(self, m: int, exclude: np.ndarray | None, members: np.ndarray | None = None) -> np.ndarray:
        """Up to m unique random eligible items (from `members`, default the whole pool), O(m) when the
        pool is large; exhaustive when m covers most of it."""
        size = self.pool.size if members is None else len(members)
        if size == 0 or m <= 0:
            return np.zeros(0, dtype=np.int64)
        if 2 * m >= size:
            allidx = np.arange(size, dtype=np.int64) if members is None else members
            if exclude is not None:
                allidx = allidx[~exclude[allidx]]
            return self.rng.permutation(allidx)[:m]
        for _ in range(4):
            pos = np.unique(self.rng.integers(0, size, size=int(1.3 * m) + 8))
            cand = pos if members is None else members[pos]
            if exclude is not None:
                cand = cand[~exclude[cand]]
            if len(cand) >= m or _ == 3:
                return self.rng.permutation(cand)[:m]
        return cand  # pragma: no cover

    def draw_by_arms(self, n: int, probs: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
        """n items: per-arm counts from `probs`, uniform (epoch-wise) inside each arm. Arms that run out
        of eligible items hand their remainder to the others."""
        members = self.pool.arm_members()
        self.sampler.sync(members, self.pool.size, self.rng)
        probs = np.asarray(probs, dtype=np.float64).copy()
        sizes = np.array([len(m) for m in members])
        probs[sizes == 0] = 0
        taken = np.zeros(self.pool.size, dtype=bool)
        out: list[np.ndarray] = []
        need = n
        for _ in range(len(members) + 1):
            if need <= 0 or probs.sum() <= 0:
                break
            counts = self.rng.multinomial(need, probs / probs.sum())
            for a in np.flatnonzero(counts):
                got = self.sampler.draw(a, int(counts[a]), self.rng, exclude, taken)
                out.append(got)
                need -= len(got)
                if len(got) < counts[a]:
                    probs[a] = 0  # exhausted for this call
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        d: dict[str, Any] = {
            "name": self.name, "params": self.params.model_dump(mode="json"), "seed": self.seed,
            "group_size": self.group_size, "rng": self.rng.bit_generator.state, "steps": self.steps,
            "selections": self.selections, "events": self.events, "degenerate": self.degenerate,
            "n_items": self._n_items, "n_arms": self._n_arms, "sampler": self.sampler.state_dict(),
            "version": self.version, "step": None if self._step is None else self._step.to_dict(),
            "start": _copy(self._start), "touched": self._touched.copy(),
        }
        for name in {**self._COMMON_ITEM, **self.item_state}:
            d[name] = getattr(self, name).copy()
        for name in {**self._COMMON_ARM, **self.arm_state}:
            d[name] = getattr(self, name).copy()
        for name in self.state_attrs:
            d[name] = _copy(getattr(self, name))
        return d

    def load_state_dict(self, d: dict) -> None:
        self.params = self.Params.model_validate(d["params"])
        self.seed, self.group_size = d["seed"], d["group_size"]
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = d["rng"]
        self.steps, self.selections, self.events, self.degenerate = d["steps"], d["selections"], d["events"], d["degenerate"]
        self.sampler.load_state_dict(d["sampler"])
        self.version = d["version"]
        self._step = None if d["step"] is None else EventBatch.from_dict(d["step"])
        self._start, self._touched = _copy(d["start"]), np.array(d["touched"], dtype=np.int64)
        for name in {**self._COMMON_ITEM, **self.item_state, **self._COMMON_ARM, **self.arm_state}:
            setattr(self, name, np.array(d[name]))
        for name in self.state_attrs:
            setattr(self, name, _copy(d[name]))
        self._n_items, self._n_arms = d["n_items"], d["n_arms"]
        self.sync()

    # -- reading -------------------------------------------------------------------------------
    def arm_weights(self) -> np.ndarray:
        if self.draws_arms:
            return self.gated_arm_probs()
        share = self.arm_share
        total = share.sum()
        if total <= 0:
            sizes = self.pool.arm_sizes().astype(np.float64)
            return sizes / max(sizes.sum(), 1)
        return share / total

    def describe(self) -> dict:
        self.sync()
        w = self.arm_weights()
        v = self.arm_values()
        sizes = self.pool.arm_sizes()
        arms = []
        for a, cat in enumerate(self.pool.categories):
            pr = self.arm_pass[a]
            arms.append({
                "name": cat, "weight": float(w[a]) if len(w) > a else 0.0,
                "value": None if v is None or not np.isfinite(v[a]) else float(v[a]),
                "pass_rate": None if np.isnan(pr) else float(pr),
                "items": int(sizes[a]), "events": int(self.arm_events[a]),
            })
        noisy = self.noise_gate()
        details = {**self.details(), "noise_arms": [c for a, c in enumerate(self.pool.categories) if noisy[a]]}
        return {"strategy": {"name": self.name, "params": self.params.model_dump(mode="json")},
                "events": self.events, "steps": self.steps,
                "degenerate_ratio": self.degenerate / self.events if self.events else 0.0,
                "arms": arms, "details": details}


def _discount(group: np.ndarray, lam: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Exponential forgetting over rows of several groups at once: (lam^count per group, lam^age per row),
    where a row's age is how many rows of its group come after it."""
    count = np.bincount(group, minlength=size)
    order = np.argsort(group, kind="stable")
    pos = np.empty(len(group), dtype=np.int64)
    pos[order] = np.arange(len(group)) - np.repeat(np.cumsum(count) - count, count)
    return lam ** count, lam ** (count[group] - 1 - pos)


def _copy(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, dict):
        return {k: _copy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_copy(v) for v in x]
    return x


def softmax(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64) / temperature
    z = z - np.max(z) if len(z) else z
    e = np.exp(z)
    return e / e.sum() if len(e) else e
