"""screen: SPEED-RL's screening before the full group (Zhang et al., "Accelerating RL for LLM Reasoning with
Optimized Curriculum Sampling" / SPEED, arXiv 2506.09016), over any selection rule (the default included).

The paper's rule: generate N_init = 4 rollouts per prompt; a prompt *qualifies* iff its N_init rewards are not all
equal (std > 0, i.e. 0 < p_hat < 1); only qualified prompts get the continuation, the rest are discarded with
their rollouts. P(qualify | p) = 1 - p^N_init - (1 - p)^N_init, so an item the policy always solves or never
solves costs N_init rollouts instead of a whole group.

Here, through the lease (the API's per-item `num_samples`), one phase per lease:

    screen:  the inner strategy picks items; each is leased with num_samples = screen_samples (N_init)
    verdict: a returned group of at most screen_samples rewards is a screen; the item qualifies iff
             std(rewards) > tolerance (0: not all equal; NeMo-RL #4158 asks for a tolerance with continuous
             rewards); a qualified item is remembered with the step it qualified at
    full:    qualified items (oldest first, at most `max_wait` steps old) are leased before anything else, with
             num_samples = the experiment's group size; an item whose screen was not mixed gets no full group
             (it goes back to the inner strategy, which saw its screening group like any other)

A returned group of more than screen_samples rewards is a full group: it clears the item's verdict. Screening
rollouts are spent rollouts: they count in `events`, in the experiment's cost, and in `details.screening`
(groups, rollouts, tokens, how many qualified). Departure from the paper, and why: the continuation is a
separate lease, so the trainer sees the screen and the full group as two groups, each normalised on its own
(the paper trains on one group of N_init + N_cont); the lease contract has one `num_samples` per item and the
trainer drops degenerate screens like any degenerate group. With group_size <= screen_samples there is nothing
to save: every item gets its full group directly.

Predictions for calibration (`curriculum.calibration`), from the shared Beta state (`curriculum.predictive`):
the posterior mean pass rate and the Beta-Binomial probability that the leased number of samples is degenerate.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from curriculum import calibration
from curriculum.betabinom import degenerate_probability
from curriculum.cost import known_tokens
from curriculum.events import EventBatch
from curriculum.predictive import PredictiveState, item_state
from curriculum.registry import register
from curriculum.strategies.wrapper import Wrapper, WrapperParams
from curriculum.strategy import Selection

COUNTERS = ("screens", "screen_rollouts", "screen_tokens", "qualified", "fulls", "full_rollouts", "full_tokens",
            "full_degenerate")


class ScreenParams(WrapperParams):
    wrapper = "screen"
    screen_samples: int = Field(4, ge=1, le=4096, description="rollouts of a screening lease (the paper's N_init)")
    tolerance: float = Field(0.0, ge=0, description="a screen qualifies iff the std of its rewards exceeds this")
    max_wait: int = Field(8, ge=0, description="steps a qualified item waits for its full group before re-screening")
    decay: float = Field(0.99, gt=0, le=1, description="evidence factor per policy version of the shared Beta state")

@register
class Screen(Wrapper):
    name = "screen"
    description = "SPEED-RL: lease a few samples per item first, the full group only for items whose screen is mixed."
    Params = ScreenParams
    item_state = {**item_state("pred_"), "qualified_at": (np.int64, -1), **calibration.item_state("cal_")}
    select_items = calibration.select_items("cal_")
    state_attrs = ("pred_version", *COUNTERS, *calibration.state_attrs("cal_"))
    step_attrs = ("pred_version", *COUNTERS, *calibration.step_attrs("cal_"))

    def setup(self) -> None:
        super().setup()
        for c in COUNTERS:
            setattr(self, c, 0)
        self._new_qualified: list[np.ndarray] = []  # items update() qualified since waiting() last read them
        _ = self.pred, self.calibration  # their scalars live in this strategy unless loaded

    @property
    def pred(self) -> PredictiveState:
        return PredictiveState(decay=self.params.decay, store=self, prefix="pred_")

    @property
    def calibration(self) -> calibration.Calibration:
        return calibration.Calibration(store=self, prefix="cal_")

    @property
    def screening(self) -> bool:
        """False when the full group is no larger than a screen (nothing to save)."""
        return self.group_size > self.params.screen_samples

    # -- the fold ------------------------------------------------------------------------------------
    def update(self, batch: EventBatch) -> None:
        self.inner._fold(batch, self.fold_arms)  # the same batch: per-arm sums shared
        self.calibration.resolve(batch, self.version)
        self.pred.observe_batch(batch)
        tokens = known_tokens(batch)
        screen = batch.count <= self.params.screen_samples if self.screening else np.zeros(len(batch), bool)
        mixed = ~batch.degenerate & (batch.std > self.params.tolerance)
        # canonical order: an item with several groups in the step ends with its last row's verdict
        self.qualified_at[batch.item] = np.where(screen & mixed, self.steps, -1)
        self._new_qualified.append(batch.item[screen & mixed])  # for waiting(): see _qualified
        if len(self._new_qualified) > 64:  # nobody reads: scan afresh at the next read instead of piling up
            self.__dict__.pop("_waiting", None)
            self._new_qualified = []
        full = ~screen
        self.screens += int(screen.sum())
        self.screen_rollouts += int(batch.count[screen].sum())
        self.screen_tokens += float(tokens[screen].sum())
        self.qualified += int((screen & mixed).sum())
        self.fulls += int(full.sum())
        self.full_rollouts += int(batch.count[full].sum())
        self.full_tokens += float(tokens[full].sum())
        self.full_degenerate += int((full & batch.degenerate).sum())

    def waiting(self, exclude: np.ndarray | None) -> np.ndarray:
        """Qualified items not leased, whose screen is at most max_wait steps old, oldest screen first."""
        cand = self._qualified()
        at = self.qualified_at[cand]
        ok = self.steps - at <= self.params.max_wait
        if exclude is not None:
            ok &= ~exclude[cand]
        idx, at = cand[ok], at[ok]
        return idx[np.argsort(at, kind="stable")]

    def _qualified(self) -> np.ndarray:
        """The items whose screen qualified them within max_wait steps, in index order. Kept between reads (a scan
        of 10^6 items per selection cost more than the rest of it): a superset is kept, items added as update()
        qualifies them and dropped once their verdict is cleared or too old. An item's verdict changes only in
        update() (a rewind of the open step is always followed by its fold, which writes the step's items again),
        so a dropped item comes back through update(). Rebuilt after a load and when max_wait grows."""
        self.settle()  # the reports still waiting add their qualified items first
        keep = self.__dict__.get("_waiting")
        if keep is None or keep[1] < self.params.max_wait:
            cand = np.flatnonzero(self.qualified_at >= 0)
        else:
            new = self._new_qualified
            cand = np.union1d(keep[0], np.concatenate(new)) if new else keep[0]
        at = self.qualified_at[cand]
        cand = cand[(at >= 0) & (self.steps - at <= self.params.max_wait)]
        self.__dict__["_waiting"] = (cand, self.params.max_wait)
        self._new_qualified = []
        return cand

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        full = self.waiting(exclude)[:n]
        if len(full) == n:
            return full
        # marked in the caller's mask (or the scratch one) and put back after: no pool-sized copy per selection
        mask = self.scratch_mask() if exclude is None else exclude
        was = mask[full]
        mask[full] = True
        try:
            picked = self.inner.select(n - len(full), mask).indices
        finally:
            mask[full] = was
        return np.concatenate([full, picked])

    def allocate(self, indices: np.ndarray) -> np.ndarray:
        if not self.screening:
            return self.inner.allocate(indices)
        at = self.qualified_at[indices]
        ok = (at >= 0) & (self.steps - at <= self.params.max_wait)
        return np.where(ok, self.group_size, self.params.screen_samples).astype(np.int64)

    def select(self, n: int, exclude: np.ndarray | None = None) -> Selection:
        sel = super().select(n, exclude)
        budget = self.inner.params.token_budget
        if self.params.token_budget is None:
            sel.max_tokens = budget.at(self.steps) if budget else None
        a, b = self.pred.posterior(sel.indices)  # read once: every prediction below is rows of it
        q = np.zeros(len(sel), dtype=np.float64)
        for g in np.unique(sel.num_samples).tolist():
            at = sel.num_samples == g
            q[at] = degenerate_probability(a[at], b[at], g)
        self.calibration.record(sel.indices, a / (a + b), q)
        return sel

    # -- state ---------------------------------------------------------------------------------------
    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        self.__dict__.pop("_waiting", None)
        calibration.loaded(self, "cal_")

    def details(self) -> dict:
        s = {c: getattr(self, c) for c in COUNTERS}
        s["qualify_rate"] = self.qualified / self.screens if self.screens else None
        s["screen_share_of_rollouts"] = (self.screen_rollouts / (self.screen_rollouts + self.full_rollouts)
                                         if self.screen_rollouts + self.full_rollouts else None)
        s["waiting"] = len(self.waiting(None))
        return {"inner": self.inner.details(), "screening": s, "calibration": self.calibration.metrics(),
                "predictive": self.pred.details()}
