"""gated: any strategy (the default included), with the skip gate (`curriculum.gates`) applied after its
selection — a user keeps their curriculum and adds the prediction.

    picked  = inner.select(need, exclude + already considered)
    admit   = SkipGate(p_degenerate(picked, G))          (flagged p >= threshold skipped, a `floor` share re-tested)
    repeat up to `rounds` times while fewer than n are admitted; then the least likely degenerate of the
    skipped ones fill the batch (recorded as fills)

p_degenerate comes from the shared per-prompt predictive state (`curriculum.predictive`, Beta posterior with
evidence decayed per policy version, on the item's level's empirical-Bayes prior), and the threshold from the
stated cost ratio (`curriculum.gates`). The inner strategy observes every group and keeps its own state; the
wrapper folds each step into it and rewinds it with its own step ledger (its `step_parts()`, as `compose`).
Rollout counts and the token budget are the inner strategy's (the wrapper's own `token_budget`, when set,
wins). `details` has the inner strategy's details under `inner` and the gate's calibration under `skip_gate`:
skips, re-tests, Brier score, precision and recall (see `curriculum.gates`).

A wrapper, so that `curriculum/strategy.py` is untouched. The hook that would make it unnecessary, in
`Strategy`: a list `gates` (built from a `gates` field of StrategyParams), applied in `select()` right after
`_select()` with the refill loop above, their per-item arrays and `RESOLVED` counters added to the step ledger
(`_item_names()` / `step_attrs`) and resolved in `_fold()`, and one `PredictiveState` owned by the base class
(item_state "pred_*") that every strategy and gate reads instead of one copy per strategy. Known limit of the
wrapper: an item leased again within the step that already reported it has its new prediction rewound by the
step's next report (the prediction should travel in the lease record instead).
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from curriculum import calibration, gates
from curriculum.cost import known_tokens
from curriculum.events import EventBatch
from curriculum.predictive import PRIOR_DOC, PredictiveState, Prior, arm_state, item_state, of_strategy
from curriculum.registry import register
from curriculum.strategies.wrapper import Wrapper, WrapperParams
from curriculum.strategy import Selection


class GatedParams(WrapperParams):
    wrapper = "gated"
    skip: gates.SkipGateParams = Field(
        default_factory=gates.SkipGateParams, description="the skip gate (curriculum.gates)"
    )
    decay: float = Field(0.99, gt=0, le=1, description="evidence factor per policy version of the shared Beta state")
    prior: Prior = Field("arm", description=PRIOR_DOC)
    rounds: int = Field(4, ge=1, description="selections asked of the inner strategy to fill a batch before fills")

@register
class Gated(Wrapper):
    name = "gated"
    description = (
        "Any strategy with the skip gate after its selection: predicted-degenerate items skipped, some re-tested."
    )
    Params = GatedParams
    item_state = {**item_state("pred_"), **gates.item_state("gate_"), **calibration.item_state("cal_")}
    arm_state = arm_state("pred_")
    select_items = calibration.select_items("cal_")
    state_attrs = ("pred_version", *gates.state_attrs("gate_"), *calibration.state_attrs("cal_"), "retest_rollouts",
                   "retest_tokens")
    step_attrs = ("pred_version", *("gate_" + n for n in gates.RESOLVED), *calibration.step_attrs("cal_"),
                  "retest_rollouts", "retest_tokens")

    def setup(self) -> None:
        super().setup()
        _ = self.gate, self.pred, self.calibration  # create their counters in this strategy (their store) unless loaded
        self.retest_rollouts, self.retest_tokens = 0, 0.0  # the re-tests' overhead: what the flagged items cost

    @property
    def pred(self) -> PredictiveState:
        return of_strategy(self, self.params.decay, self.params.prior)

    @property
    def calibration(self) -> calibration.Calibration:
        return calibration.Calibration(store=self, prefix="cal_")

    @property
    def gate(self) -> gates.SkipGate:
        return gates.SkipGate(self.params.skip, store=self, prefix="gate_")

    def update(self, batch: EventBatch) -> None:
        self.inner._fold(batch, self.fold_arms)  # the same batch: per-arm sums shared
        self.calibration.resolve(batch, self.version, self._gate_step(batch))
        self.pred.observe_batch(batch)

    def _gate_step(self, batch: EventBatch) -> dict:
        """Resolve the gate's pending predictions; its confusion counts of this step (the counters are at their
        step-start values here: update() runs once per fold, after the rewind) for the calibration history."""
        before = {n: getattr(self, "gate_" + n) for n in ("tp", "fp", "fn", "tp_w")}
        _, first = calibration.first_rows(batch.item)
        retest = first[self.gate_kind[batch.item[first]] == gates.RETEST]  # rows that resolve a re-test
        self.retest_rollouts += int(batch.count[retest].sum())
        self.retest_tokens += float(known_tokens(batch)[retest].sum())
        self.gate.resolve(batch.item, batch.degenerate)
        d = {n: getattr(self, "gate_" + n) - v for n, v in before.items()}
        return {"gate_tp": int(d["tp"]), "gate_fp": int(d["fp"]), "gate_fn": int(d["fn"]),
                "gate_tp_w": float(d["tp_w"]),
                "precision": d["tp"] / (d["tp"] + d["fp"]) if d["tp"] + d["fp"] else None,
                "recall": d["tp_w"] / (d["tp_w"] + d["fn"]) if d["tp_w"] + d["fn"] else None}

    def select(self, n: int, exclude: np.ndarray | None = None) -> Selection:
        sel = super().select(n, exclude)
        budget = self.inner.params.token_budget
        if self.params.token_budget is None:
            sel.max_tokens = budget.at(self.steps) if budget else None
        return sel

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        # marked in the caller's mask (or the scratch one) and put back after: no pool-sized copy per selection.
        # Every item marked was unmarked before: the inner strategy never picks an item the mask excludes
        mask = self.scratch_mask() if exclude is None else exclude
        considered: list[np.ndarray] = []
        try:
            return self._gated_rounds(n, mask, considered)
        finally:
            for got in considered:
                mask[got] = False

    def _gated_rounds(self, n: int, mask: np.ndarray, considered: list[np.ndarray]) -> np.ndarray:
        gate, pred = self.gate, self.pred
        # (items, predicted pass rate, p_degenerate) of the admitted and of the skipped; the state does not move
        # during a selection, so each item's prediction is computed once and serves the gate and the calibration
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        skipped: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        need = n
        for _ in range(self.params.rounds):
            got = self.inner.select(need, mask).indices
            if not len(got):
                break
            mask[got] = True
            considered.append(got)
            rate, p = pred.predict(got, self.group_size)
            keep, flagged = gate.admit(p, self.rng)
            gate.record(got[keep], p[keep], np.where(flagged[keep], gates.RETEST, gates.CLEAR))
            out.append((got[keep], rate[keep], p[keep]))
            skipped.append((got[~keep], rate[~keep], p[~keep]))
            need -= int(keep.sum())
            if need <= 0:
                break
        if need > 0 and skipped:  # too few admitted: the least likely degenerate of the skipped fill the batch
            idx, rate, p = (np.concatenate(c) for c in zip(*skipped))
            fill = np.argsort(p, kind="stable")[:need]
            gate.record(idx[fill], p[fill], np.full(len(fill), gates.FILL))
            out.append((idx[fill], rate[fill], p[fill]))
        if not out:
            return np.zeros(0, dtype=np.int64)
        picked, rate, p = (np.concatenate(c) for c in zip(*out))
        self.calibration.record(picked, rate, p)
        return picked

    def allocate(self, indices: np.ndarray) -> np.ndarray:
        return self.inner.allocate(indices)

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        calibration.loaded(self, "cal_")

    def details(self) -> dict:
        gate = {**self.gate.metrics(), "retest_rollouts": self.retest_rollouts, "retest_tokens": self.retest_tokens}
        return {"inner": self.inner.details(), "skip_gate": gate, "predictive": self.pred.details(),
                "calibration": self.calibration.metrics()}
