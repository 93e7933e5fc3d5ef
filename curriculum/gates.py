"""Admission gates: they compose after a strategy's selection (DESIGN §3, "Next layers"; issue 17).

A gate takes the candidates a strategy chose, returns the admitted ones, and keeps its own state. The one
here is the **skip gate** (predicted-degenerate admission): with p_i = P(a group of G samples of item i is
all successes or all failures) from the shared predictive state (`curriculum.predictive`),

    flagged_i  = p_i >= threshold
    admitted_i = not flagged_i, or (flagged_i and u_i < floor)           (u_i ~ U(0, 1): exploration)

so an item predicted degenerate is skipped, except that a share `floor` (epsilon) of the flagged ones is
re-tested.

**The threshold is a decision rule, not a tuned constant.** Admitting an item that turns out degenerate wastes
its G rollouts (cost C_w); skipping one that would have been informative loses that group (cost C_s). With
p_i calibrated, skipping is the cheaper choice in expectation when

    p_i C_w >= (1 - p_i) C_s    <=>    p_i >= r / (1 + r),      r = cost_ratio = C_s / C_w

The default r = 1 counts a lost informative group as much as a wasted one (threshold 0.5: skip what is more
likely degenerate than not). r = 4 asks for 80% confidence before a skip (a precision of 0.8 at the margin); an
explicit `threshold` overrides the rule. The rule is only as good as p_i, which is why the predictive state
borrows strength from the item's level (`curriculum.predictive`, empirical-Bayes prior per arm).

Every leased item's prediction is recorded when it is leased (p_i, flagged or not, and a weight)
and resolved when its group comes back, which gives, per run:

* the Brier score of "degenerate": mean (p_i - degenerate_i)^2 over resolved predictions;
* precision = TP / (TP + FP) over the re-tests (flagged items that were explored): a re-tested item that
  turns out degenerate is a true positive, one that turns out mixed a false positive (the gate would have
  skipped an informative group);
* recall = TP_w / (TP_w + FN): a flagged re-test stands for 1/floor flagged items (the skipped ones are not
  rolled out, the explored ones are a uniform 'floor' sample of them), so TP_w = sum of 1/floor over true
  positives estimates all the degenerate groups the gate catches; FN counts admitted unflagged items that
  turned out degenerate (groups the gate let through and paid for).

Items the wrapper admits to fill a batch when too few survive (the least likely degenerate of the skipped
ones) are recorded as `fill` and left out of precision and recall (they are not a random sample).

The arrays and counters live in a *store* (default: this object); the `gated` strategy passes itself and a
prefix, so they are part of its `item_state` / `state_attrs` and follow its step ledger and snapshots.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curriculum.calibration import first_rows
from curriculum.items import grow as _grow

NONE, CLEAR, RETEST, FILL = -1, 0, 1, 2  # kinds of a pending prediction

#: per-item pending prediction: p at lease, its kind, its weight
ITEM: dict[str, tuple[Any, Any]] = {"p": (np.float64, np.nan), "kind": (np.int8, NONE), "w": (np.float64, 0.0)}
#: counters changed when groups come back (part of a step's rewind)
RESOLVED = ("tp", "fp", "fn", "tn", "tp_w", "brier_s", "brier_n", "fills", "fill_degenerate")
#: counters changed at lease time
LEASED = ("considered", "skipped", "explored", "filled")


class SkipGateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="apply the gate (false: admit everything, still record predictions)")
    cost_ratio: float = Field(
        1.0, gt=0, description="cost of skipping an informative group / cost of rolling out a degenerate one; sets "
        "the threshold r / (1 + r)"
    )
    threshold: float | None = Field(
        None, gt=0, le=1, description="skip items whose predicted degenerate probability is at least this (set: "
        "overrides cost_ratio)"
    )
    floor: float = Field(0.05, gt=0, le=1, description="share of skipped items re-tested anyway (exploration epsilon)")

    @property
    def cut(self) -> float:
        """The decision threshold: `threshold` if set, else the Bayes rule's r / (1 + r) (module docstring)."""
        return self.threshold if self.threshold is not None else self.cost_ratio / (1.0 + self.cost_ratio)


def item_state(prefix: str) -> dict[str, tuple[Any, Any]]:
    return {prefix + n: v for n, v in ITEM.items()}


def state_attrs(prefix: str) -> tuple[str, ...]:
    return tuple(prefix + n for n in (*RESOLVED, *LEASED))


class _Holder:
    pass


class SkipGate:
    def __init__(self, params: SkipGateParams | dict | None = None, n: int = 0, *, store: Any = None,
                 prefix: str = "") -> None:
        self.params = params if isinstance(params, SkipGateParams) else SkipGateParams.model_validate(params or {})
        self._p = prefix
        if store is None:
            store = _Holder()
            for name, (dt, fill) in item_state(prefix).items():
                setattr(store, name, np.full(n, fill, dtype=dt))
        self._s = store
        for name in (*RESOLVED, *LEASED):
            if not hasattr(store, prefix + name):
                setattr(store, prefix + name, 0.0 if name in ("tp_w", "brier_s") else 0)

    def _get(self, name: str) -> Any:
        return getattr(self._s, self._p + name)

    def _add(self, name: str, v: Any) -> None:
        setattr(self._s, self._p + name, self._get(name) + v)

    def grow(self, n: int) -> None:
        for name, (_dt, fill) in item_state(self._p).items():
            setattr(self._s, name, _grow(getattr(self._s, name), n, fill))

    # -- lease time ---------------------------------------------------------------------------------
    def admit(self, p_degenerate: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(admitted mask, flagged mask) for candidates with these predictions. Draws one uniform per
        candidate from `rng` (always, so the RNG stream does not depend on the predictions)."""
        p = np.asarray(p_degenerate, dtype=np.float64)
        u = rng.random(len(p))
        flagged = p >= self.params.cut if self.params.enabled else np.zeros(len(p), dtype=bool)
        keep = ~flagged | (u < self.params.floor)
        self._add("considered", len(p))
        self._add("skipped", int((~keep).sum()))
        self._add("explored", int((keep & flagged).sum()))
        return keep, flagged

    def record(self, idx: np.ndarray, p_degenerate: np.ndarray, kind: np.ndarray) -> None:
        """Remember the prediction of each leased item (kind CLEAR, RETEST or FILL)."""
        idx = np.asarray(idx, dtype=np.int64)
        kind = np.asarray(kind, dtype=np.int8)
        self._get("p")[idx] = p_degenerate
        self._get("kind")[idx] = kind
        self._get("w")[idx] = np.where(kind == RETEST, 1.0 / self.params.floor, 1.0)
        self._add("filled", int((kind == FILL).sum()))

    # -- when groups come back ------------------------------------------------------------------------
    def resolve(self, items: np.ndarray, degenerate: np.ndarray) -> None:
        """Score the pending predictions of these groups' items against their outcome, and clear them
        (an item's first group after its lease resolves it; later ones find nothing pending)."""
        items = np.asarray(items, dtype=np.int64)
        kind_a, p_a, w_a = self._get("kind"), self._get("p"), self._get("w")
        _, first = first_rows(items)
        it, d = items[first], np.asarray(degenerate, dtype=bool)[first]
        kind = kind_a[it]
        on = kind != NONE
        it, d, kind, p, w = it[on], d[on], kind[on], p_a[it[on]], w_a[it[on]]
        if not len(it):
            return
        self._add("brier_s", float(((p - d) ** 2).sum()))
        self._add("brier_n", len(it))
        re, cl = kind == RETEST, kind == CLEAR
        self._add("tp", int((re & d).sum()))
        self._add("fp", int((re & ~d).sum()))
        self._add("tp_w", float(w[re & d].sum()))
        self._add("fn", int((cl & d).sum()))
        self._add("tn", int((cl & ~d).sum()))
        self._add("fills", int((kind == FILL).sum()))
        self._add("fill_degenerate", int(((kind == FILL) & d).sum()))
        kind_a[it], p_a[it], w_a[it] = NONE, np.nan, 0.0

    # -- reading ------------------------------------------------------------------------------------
    def metrics(self) -> dict:
        g = self._get
        tp, fp, fn = g("tp"), g("fp"), g("fn")
        return {"considered": int(g("considered")), "skipped": int(g("skipped")), "retests": int(g("explored")),
                "filled": int(g("filled")), "resolved": int(g("brier_n")),
                "brier": g("brier_s") / g("brier_n") if g("brier_n") else None,
                "precision": tp / (tp + fp) if tp + fp else None,
                "recall": g("tp_w") / (g("tp_w") + fn) if g("tp_w") + fn else None,
                "tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(g("tn"))}

    def state_dict(self) -> dict:
        d = {n: getattr(self._s, self._p + n) for n in (*RESOLVED, *LEASED)}
        d.update({n: getattr(self._s, self._p + n).copy() for n in ITEM})
        d["params"] = self.params.model_dump()
        return d

    def load_state_dict(self, d: dict) -> None:
        self.params = SkipGateParams.model_validate(d["params"])
        for n, (dt, _) in ITEM.items():
            setattr(self._s, self._p + n, np.array(d[n], dtype=dt))
        for n in (*RESOLVED, *LEASED):
            setattr(self._s, self._p + n, d[n])
