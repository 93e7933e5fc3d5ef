"""adcl: Adaptive Difficulty Curriculum Learning (Zhang et al. 2025, "Learning Like Humans: Advancing LLM Reasoning
Capabilities via Adaptive Difficulty Curriculum Learning and Expert-Guided Self-Reformulation", arXiv 2505.08364).

The paper's premise is "difficulty shift": the predefined difficulty order stops matching the model's own as it
trains, so the order of the upcoming data is re-measured with the current model before it is trained on.

Here (METHODS.md §D1; chunk sizes and probe counts are not recoverable from the paper, our defaults):

    order:     items by prior difficulty (item.difficulty, then category position, then a seeded key), split into
               consecutive chunks of `chunk_size` items
    estimate:  the next chunk's items are leased with num_samples = g_est (the screening mechanism: a lease's
               per-item `num_samples`); each probe group's mean is the item's estimated pass rate p_est
    train:     once every probe of the chunk is back, the chunk is re-sorted easy -> hard (p_est descending, ties
               by prior rank) and served in that order, cyclically, with full groups, for `period` steps
    then the next chunk is estimated (after the last chunk, the first again).

`reestimate: false` is the ablation: the same chunks and periods in the prior order, without probes.

A lease larger than what the chunk gives (its probes, or the unleased part of its order) is filled from the previous
chunk's order, then from the prior order after the chunk (full groups), so workers never idle. Probe rollouts are
spent rollouts: they count in the experiment's cost (every group does) and in `details.probes` (groups, rollouts,
their share of all rollouts). Deviation: the trainer also trains on probe groups (the lease API has no eval-only
flag); the paper most likely does not.

Phase changes happen at selection time (the fold only records p_est), so a step re-folded when a late report
arrives never replays a phase change, and a snapshot taken mid-chunk continues with the same order and cursor.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from curriculum.cost import group_tokens
from curriculum.events import EventBatch
from curriculum.params import StrategyParams
from curriculum.registry import register
from curriculum.strategy import Strategy

ESTIMATE, TRAIN = "estimate", "train"
COUNTERS = ("probe_groups", "probe_rollouts", "probe_tokens")


class AdclParams(StrategyParams):
    chunk_size: int = Field(256, ge=1, description="items per chunk (one re-estimation covers one chunk)")
    g_est: int = Field(4, ge=1, description="probe rollouts per item when its chunk is re-estimated")
    period: int = Field(10, ge=1, description="steps K a chunk is trained on before the next one is re-estimated")
    reestimate: bool = Field(True, description="probe and re-sort each chunk (false: the prior order, no probes; "
                             "the ablation)")


@register
class Adcl(Strategy):
    name = "adcl"
    description = "ADCL: re-estimate each upcoming chunk's difficulty with a few probe rollouts, serve it easy->hard."
    Params = AdclParams
    # p_est/p_epoch: the fold's record of a probe; probe_epoch/probe_step: when the item was leased as a probe
    item_state = {"p_est": (np.float64, np.nan), "p_epoch": (np.int64, -1), "probe_epoch": (np.int64, -1),
                  "probe_step": (np.int64, -1), "tie": (np.float64, np.nan)}
    select_items = ("probe_epoch", "probe_step", "tie")
    state_attrs = ("rank", "phase", "epoch", "chunk", "order", "prev_order", "cursor", "prev_cursor",
                   "train_start", "estimates", *COUNTERS)
    step_attrs = COUNTERS

    def setup(self) -> None:
        self.rank = np.zeros(0, dtype=np.int64)  # item indices, easiest first by prior difficulty
        self.phase, self.epoch, self.chunk = ESTIMATE, 0, 0
        self.order = np.zeros(0, dtype=np.int64)  # the chunk being trained, easy -> hard by p_est
        self.prev_order = np.zeros(0, dtype=np.int64)  # the previous chunk's order (fills slots while estimating)
        self.cursor = self.prev_cursor = 0
        self.train_start = 0
        self.estimates = 0  # chunks whose estimate completed
        for c in COUNTERS:
            setattr(self, c, 0)

    def on_grow(self, old_items: int, old_arms: int) -> None:
        # items of equal prior difficulty are ordered by a seeded key (their index is arbitrary), kept per item so
        # that pool growth does not reshuffle the items already ranked
        new = np.isnan(self.tie)
        self.tie[new] = self.rng.random(int(new.sum()))
        d = self.pool.difficulty
        key = np.where(np.isnan(d), np.inf, d)
        self.rank = np.lexsort((self.tie, self.pool.category, key)).astype(np.int64)

    # -- the fold: record probes -------------------------------------------------------------------
    def is_probe(self, batch: EventBatch) -> np.ndarray:
        """Groups that answer a probe lease: leased as a probe, no larger than g_est, estimate not yet recorded."""
        it = batch.item
        return ((self.probe_epoch[it] >= 0) & (self.p_epoch[it] != self.probe_epoch[it])
                & (batch.count <= self.params.g_est))

    def update(self, batch: EventBatch) -> None:
        probe = self.is_probe(batch)
        it = batch.item[probe]
        self.p_epoch[it] = self.probe_epoch[it]
        self.p_est[it] = batch.mean[probe]
        self.probe_groups += int(probe.sum())
        self.probe_rollouts += int(batch.count[probe].sum())
        self.probe_tokens += float(np.nan_to_num(group_tokens(batch))[probe].sum())

    # -- phases (selection time) -------------------------------------------------------------------
    def n_chunks(self) -> int:
        return max(1, -(-len(self.rank) // self.params.chunk_size))

    def chunk_items(self) -> np.ndarray:
        """The prior-rank slice of the chunk now estimated or trained."""
        size, c = self.params.chunk_size, self.chunk % self.n_chunks()
        return self.rank[c * size:(c + 1) * size]

    def advance(self) -> None:
        """Estimate -> train when every probe of the chunk is back; train -> next chunk's estimate after `period`."""
        if self.phase == TRAIN and self.steps - self.train_start >= self.params.period:
            self.prev_order, self.prev_cursor = self.order, self.cursor
            self.chunk, self.epoch, self.phase = self.chunk + 1, self.epoch + 1, ESTIMATE
        if self.phase == ESTIMATE:
            items = self.chunk_items()
            if not len(items):
                return
            if self.params.reestimate:
                if not (self.p_epoch[items] == self.epoch).all():
                    return
                # stable sort on -p_est keeps the prior rank among ties
                items = items[np.argsort(-self.p_est[items], kind="stable")]
                self.estimates += 1
            self.order, self.phase, self.cursor, self.train_start = items, TRAIN, 0, self.steps

    def probes(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        """Chunk items still without an estimate: first those never sent this epoch, then lost ones (sent at an
        earlier step, no report, not leased now)."""
        items = self.chunk_items()
        todo = items[self.p_epoch[items] != self.epoch]
        if exclude is not None:
            todo = todo[~exclude[todo]]
        sent = self.probe_epoch[todo] == self.epoch
        lost = sent & (self.probe_step[todo] < self.steps)
        return np.concatenate([todo[~sent], todo[lost]])[:n]

    @staticmethod
    def walk(order: np.ndarray, cursor: int, n: int, exclude: np.ndarray | None) -> tuple[np.ndarray, int]:
        """Up to n items of `order` from `cursor` on, cyclically, skipping excluded ones; the new cursor."""
        if not len(order) or n <= 0:
            return order[:0], cursor
        seq = np.roll(order, -(cursor % len(order)))
        ok = np.ones(len(seq), bool) if exclude is None else ~exclude[seq]
        pos = np.flatnonzero(ok)[:n]
        new = cursor + (int(pos[-1]) + 1 if len(pos) else 0)
        return seq[pos], new % len(order)

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        self.advance()
        if self.phase == TRAIN:
            first, self.cursor = self.walk(self.order, self.cursor, n, exclude)
        else:
            first = self.probes(n, exclude)
            self.probe_epoch[first] = self.epoch
            self.probe_step[first] = self.steps
        mask = np.zeros(self.pool.size, bool) if exclude is None else exclude.copy()
        mask[first] = True
        fill, self.prev_cursor = self.walk(self.prev_order, self.prev_cursor, n - len(first), mask)
        mask[fill] = True
        chunk = self.chunk_items()
        mask[chunk] = True  # the chunk's items are probed, then served in its order, never as spill
        start = (self.chunk % self.n_chunks() + 1) * self.params.chunk_size  # the prior order after the chunk
        spill, _ = self.walk(self.rank, start, n - len(first) - len(fill), mask)
        return np.concatenate([first, fill, spill])

    def allocate(self, indices: np.ndarray) -> np.ndarray:
        probe = (self.probe_epoch[indices] == self.epoch) & (self.p_epoch[indices] != self.epoch)
        if self.phase == TRAIN:
            probe[:] = False
        return np.where(probe, self.params.g_est, self.group_size).astype(np.int64)

    def details(self) -> dict:
        total = int(self.n_samples.sum())
        head = self.order[:8]
        return {"phase": self.phase, "chunk": self.chunk, "epoch": self.epoch, "estimates": self.estimates,
                "cursor": self.cursor, "steps_in_chunk": self.steps - self.train_start if self.phase == TRAIN else 0,
                "order_head": [{"item": self.pool.ids[i], "p_est": float(self.p_est[i])} for i in head.tolist()],
                "probes": {"groups": self.probe_groups, "rollouts": self.probe_rollouts, "tokens": self.probe_tokens,
                           "share_of_rollouts": self.probe_rollouts / total if total else None}}
