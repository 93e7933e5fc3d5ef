"""uniform: epoch-wise shuffling without replacement — the baseline every curriculum is compared to.

Each epoch visits every item once in a fresh random order (what a plain DataLoader with shuffle=True does);
leased items are skipped and come back in a later epoch."""
from __future__ import annotations

import numpy as np

from curriculum.registry import register
from curriculum.strategy import Strategy


@register
class Uniform(Strategy):
    name = "uniform"
    description = "Epoch-wise shuffling without replacement (the baseline)."

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        # the one group is the whole pool: built again only when the pool grew
        if self.sampler.n_items != self.pool.size or len(self.sampler.cursor) != 1:
            self.sampler.sync([np.arange(self.pool.size, dtype=np.int64)], self.pool.size, self.rng)
        taken = self.scratch_mask()
        idx = self.sampler.draw(0, n, self.rng, exclude, taken)
        taken[idx] = False
        return idx
