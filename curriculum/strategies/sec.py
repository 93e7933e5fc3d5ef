"""sec: Self-Evolving Curriculum (Chen et al. 2025, "Self-Evolving Curriculum for LLM Reasoning").

Arms are categories. After each step (one policy version, however many reports it arrives in) every arm a
that had groups in the step gets the reward r_a = mean |advantage| of its groups — a proxy for how much a
policy-gradient step on that arm changes the policy — and a TD(0) update

    Q_a <- (1 - alpha) Q_a + alpha r_a

The next batch draws arms from softmax(Q / tau). Defaults alpha = 0.5, tau = 1.0 (the paper's recipes).

`decay_unsampled` (on, as in the reference code): arms absent from the step get Q_a <- (1 - alpha) Q_a, so an
arm that stops being drawn drifts back toward 0 and gets re-explored. It is safe with many rollout workers
because a step is a policy version: "absent" means absent from everything the step's reports brought, not
from one worker's report. Late results join the open step. The noise guard (NoiseGuard, on by default; our
addition) caps arms whose |advantage| is high but whose pass rates do not move.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from curriculum.events import EventBatch
from curriculum.params import GuardedParams
from curriculum.registry import register
from curriculum.sampling import softmax
from curriculum.strategy import Strategy


class SECParams(GuardedParams):
    alpha: float = Field(0.5, gt=0, le=1, description="TD(0) learning rate")
    tau: float = Field(1.0, gt=0, description="softmax temperature over Q")
    decay_unsampled: bool = Field(True, description="decay Q of arms absent from a step toward 0 (reference code)")


@register
class SEC(Strategy):
    name = "sec"
    description = "Self-Evolving Curriculum: TD(0) bandit over categories on mean |advantage|, softmax draw."
    Params = SECParams
    draws_arms = True
    arm_state = {"q": (np.float64, 0.0)}

    def update(self, batch: EventBatch) -> None:
        cat, k, _ = self.fold_arms  # each row's arm and the groups per arm (the base fold's)
        r = np.bincount(cat, weights=batch.abs_adv, minlength=len(k)) / np.maximum(k, 1)
        alpha = self.params.alpha
        present = k > 0
        self.q[present] = (1 - alpha) * self.q[present] + alpha * r[present]
        if self.params.decay_unsampled:
            self.q[~present] *= 1 - alpha

    def arm_probs(self) -> np.ndarray:
        return softmax(self.q, self.params.tau)

    def arm_values(self) -> np.ndarray:
        return self.q
