"""Cost accounting in rollouts and tokens (issue 17, "Cost accounting"): what an experiment's groups cost and how
much of it bought nothing.

Every applied group (duplicates excluded) adds, with c its number of rewards and t its completion tokens (the
worker's `tokens` signal: the sum over the group's completions; groups reported without it count in `rollouts`
but not in `tokens`):

    rollouts += c                     tokens += t
    degenerate groups (all rewards equal: zero advantage, no gradient) add to waste_rollouts, waste_tokens
    mixed groups add to informative_groups, informative_tokens

    tokens_per_informative_group   = tokens / informative_groups      (what one useful group really costs,
    rollouts_per_informative_group = rollouts / informative_groups     the waste included)
    waste_share                    = waste_rollouts / rollouts

Screening and re-test overhead are strategy-specific (a screen's few-sample groups, a gate's re-tests): the
strategies that spend them count them in their own `details` (screen: `screening`, gated: `skip_gate`).
O(1) state; plain counters in the snapshot.
"""
from __future__ import annotations

import numpy as np

from curriculum.events import EventBatch

TOKENS = "tokens"  # the per-group signal workers report: completion tokens generated for the group
FIELDS = ("groups", "rollouts", "tokens", "groups_with_tokens", "waste_groups", "waste_rollouts", "waste_tokens",
          "informative_groups", "informative_rollouts", "informative_tokens")


def group_tokens(batch: EventBatch) -> np.ndarray:
    """Completion tokens of each group (nan where the worker did not report them)."""
    return batch.signals.get(TOKENS, np.full(len(batch), np.nan))


def known_tokens(batch: EventBatch) -> np.ndarray:
    """np.nan_to_num(group_tokens(batch)): 0 where not reported (no nan_to_num pass when none were)."""
    tok = batch.signals.get(TOKENS)
    return np.zeros(len(batch)) if tok is None else np.nan_to_num(tok)


class CostLedger:
    def __init__(self) -> None:
        self.c = dict.fromkeys(FIELDS, 0.0)

    def add(self, batch: EventBatch) -> None:
        tok = group_tokens(batch)
        known = ~np.isnan(tok)
        t = np.where(known, tok, 0.0)
        d = batch.degenerate
        c = self.c
        c["groups"] += len(batch)
        c["rollouts"] += float(batch.count.sum())
        c["tokens"] += float(t.sum())
        c["groups_with_tokens"] += float(known.sum())
        c["waste_groups"] += float(d.sum())
        c["waste_rollouts"] += float(batch.count[d].sum())
        c["waste_tokens"] += float(t[d].sum())
        c["informative_groups"] += float((~d).sum())
        c["informative_rollouts"] += float(batch.count[~d].sum())
        c["informative_tokens"] += float(t[~d].sum())

    def metrics(self) -> dict:
        c = self.c
        out = {k: int(v) for k, v in c.items()}
        info = c["informative_groups"]
        out["waste_share"] = c["waste_rollouts"] / c["rollouts"] if c["rollouts"] else None
        out["waste_token_share"] = c["waste_tokens"] / c["tokens"] if c["tokens"] else None
        out["rollouts_per_informative_group"] = c["rollouts"] / info if info else None
        out["tokens_per_informative_group"] = c["tokens"] / info if info and c["groups_with_tokens"] else None
        return out

    def state_dict(self) -> dict:
        return dict(self.c)

    def load_state_dict(self, d: dict) -> None:
        self.c = {k: float(d.get(k, 0.0)) for k in FIELDS}
