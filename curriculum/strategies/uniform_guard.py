"""uniform_guard: uniform sampling under the noise guard (the baseline `uniform+guard`).

    p_a   = |arm a| / sum_b |arm b|                (what `uniform` draws in expectation)
    p'    = NoiseGuard(p)                          (arms judged noise capped at floor / arms)
    items inside an arm: epoch-wise without replacement

No paper: it isolates what the noise guard alone earns over uniform sampling (the default curriculum is
compose(dump x filter) with the same guard), so a reader can tell the guard's part from the curriculum's.
"""
from __future__ import annotations

import numpy as np

from curriculum.params import GuardedParams
from curriculum.registry import register
from curriculum.strategy import Strategy


@register
class UniformGuard(Strategy):
    name = "uniform_guard"
    description = "Uniform over items (arms in proportion to their size) with the noise guard (baseline)."
    Params = GuardedParams
    draws_arms = True

    def arm_probs(self) -> np.ndarray:
        return self.pool.size_shares()
