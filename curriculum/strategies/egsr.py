"""egsr: EGSR-lite, guidance for never-solved items over any strategy (Zhang et al. 2025, "Learning Like Humans:
Advancing LLM Reasoning Capabilities via Adaptive Difficulty Curriculum Learning and Expert-Guided
Self-Reformulation", arXiv 2505.08364; METHODS.md §D2).

EGSR puts an expert solution in the context of problems the policy cannot solve alone. Lite version here:

    never solved:  the item's unguided evidence since its last guidance has >= `min_rollouts` rollouts and a Beta(1, 1)
                   posterior mean (s + 1) / (n + 2) below `threshold`
    guided:        such an item is served as its guided variant at level `levels` (the most guidance): the prompt
                   with part of its reference in front, "[hint]prompt", graded on the final answer as the item:
                   chains (metadata "steps"): the results of the first ceil((h - 1) L / levels) steps ("[a=12;b=9]");
                   other items: the leading ceil((len - 1) L / levels) characters of the answer, the rest masked
                   ("[6_]47+15=") -- never the whole answer; an item with nothing to reveal is never guided
    withdrawn:     once the served variant's own pass rate reaches `withdraw_at` over >= `min_guided` rollouts, the
                   next shorter hint is served (fresh counts), and after level 1 the plain item again

Where it lives, and why: a wrapper (like `screen` and `gated`), so that any curriculum keeps its choices and only
the rendering of its picks changes. A guided variant is an item of its own (id "<id>#hint<L>", same category,
answer and metadata plus "guided_of" and "hint_level"), added to the pool when first needed: the lease and the
worker need no new field, every report names its variant, and snapshots, replays and generated pools (added items
are kept verbatim) restore it. The inner strategy never picks variants (they are excluded from its selection) and
never sees their groups, and neither do the wrapper's own pass rates and arm statistics: guided rewards are not
the item's pass rate. They are reported apart in `details.guidance` (groups, rollouts, pass rate per level), and
they are spent rollouts in the experiment's cost. Deviation from the paper: the guided groups are trained on as
they are (their logprobs are not recomputed under the unguided prompt), and the tiny policy has no chain of
thought, so "reformulation" is at most copying the hint.
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from curriculum.events import EventBatch
from curriculum.items import Item
from curriculum.registry import register
from curriculum.strategies.wrapper import Wrapper, WrapperParams

NAMES = "abcdefghijklmnopqrstuvwxyz"  # the chain source's step names


class EgsrParams(WrapperParams):
    wrapper = "egsr"
    threshold: float = Field(0.05, gt=0, le=1, description="'never solved': posterior mean pass rate below this")
    min_rollouts: int = Field(16, ge=1, description="unguided rollouts (since the last guidance) before it can fire")
    levels: int = Field(2, ge=1, le=8, description="hint sizes; level L reveals L / levels of the reference")
    withdraw_at: float = Field(0.5, gt=0, le=1, description="guided pass rate that withdraws one level of hint")
    min_guided: int = Field(8, ge=1, description="guided rollouts at a level before it can be withdrawn")


def hint(item: Item, level: int, levels: int) -> str | None:
    """The reference part shown at `level` (None: nothing to reveal)."""
    steps = item.metadata.get("steps")
    if isinstance(steps, list) and len(steps) >= 2:
        m = math.ceil((len(steps) - 1) * level / levels)
        return ";".join(f"{NAMES[i]}={v}" for i, v in enumerate(steps[:m])) if m else None
    ans = item.answer or ""
    k = math.ceil((len(ans) - 1) * level / levels) if len(ans) > 1 else 0
    return ans[:k] + "_" * (len(ans) - k) if k else None


@register
class Egsr(Wrapper):
    name = "egsr"
    description = ("EGSR-lite: serve never-solved items with part of their reference, withdrawn as the guided pass "
                   "rate rises.")
    Params = EgsrParams
    # guided_of: the original item of a variant (-1: not a variant); level: the guidance an original is served at;
    # g_*: a variant's own rewards;
    # hint_level: a variant's level; base_*: of an original, its unguided evidence when its guidance last ended; of
    # a variant, its guided evidence when guidance last fired (selection-time records, not rewound with a step)
    item_state = {"guided_of": (np.int64, -1), "hint_level": (np.int64, 0), "level": (np.int64, 0),
                  "base_s": (np.float64, 0.0), "base_n": (np.int64, 0),
                  "g_sum": (np.float64, 0.0), "g_n": (np.int64, 0)}
    select_items = ("guided_of", "hint_level", "level", "base_s", "base_n")
    state_attrs = ("level_sum", "level_n", "level_groups", "fired", "withdrawn")
    step_attrs = ("level_sum", "level_n", "level_groups")

    def setup(self) -> None:
        super().setup()
        k = self.params.levels + 1
        self.level_sum, self.level_n = np.zeros(k), np.zeros(k, dtype=np.int64)  # guided rewards per hint level
        self.level_groups = np.zeros(k, dtype=np.int64)
        self.fired = self.withdrawn = 0  # guidance started; levels withdrawn

    # -- the fold: guided groups apart -------------------------------------------------------------
    def _fold(self, batch: EventBatch) -> None:
        g = self.guided_of[batch.item] >= 0
        if g.any():
            gb = batch.subset(g)
            np.add.at(self.g_sum, gb.item, gb.reward_sum)
            np.add.at(self.g_n, gb.item, gb.count)
            lv = self.hint_level[gb.item]
            np.add.at(self.level_sum, lv, gb.reward_sum)
            np.add.at(self.level_n, lv, gb.count)
            np.add.at(self.level_groups, lv, 1)
        if not g.all():
            super()._fold(batch.subset(~g) if g.any() else batch)

    def update(self, batch: EventBatch) -> None:
        self.inner._fold(batch, self.fold_arms)  # the same batch (the unguided rows): per-arm sums shared

    # -- guidance (selection time) -----------------------------------------------------------------
    def variant(self, i: int, level: int) -> int | None:
        """The pool index of item i's variant at `level`, added on first use (None: nothing to reveal)."""
        it = self.pool.item(i)
        vid = f"{it.id}#hint{level}"
        j = self.pool.index_of(vid)
        if j is None:
            h = hint(it, level, self.params.levels)
            if h is None:
                return None
            meta = {**it.metadata, "guided_of": it.id, "hint_level": level}
            self.pool.add([it.model_copy(update={"id": vid, "prompt": f"[{h}]{it.prompt}", "metadata": meta})])
            self.sync()
            j = self.pool.size - 1
            self.guided_of[j], self.hint_level[j] = i, level
        return j

    def never_solved(self, idx: np.ndarray) -> np.ndarray:
        p = self.params
        n = self.n_samples[idx] - self.base_n[idx]
        s = self.reward_sum[idx] - self.base_s[idx]
        return (n >= p.min_rollouts) & ((s + 1) / (n + 2) < p.threshold)

    def guide(self, i: int) -> int:
        """What to serve for original i: fire, withdraw or keep its guidance; its variant's index or i itself."""
        p, lv = self.params, int(self.level[i])
        if lv == 0 and self.never_solved(np.array([i]))[0] and self.variant(i, p.levels) is not None:
            lv, self.fired = p.levels, self.fired + 1
            vid = self.pool.ids[i] + "#hint{}"
            for j in (self.pool.index_of(vid.format(L)) for L in range(1, lv + 1)):  # fresh counts for used variants
                if j is not None:
                    self.base_s[j], self.base_n[j] = self.g_sum[j], self.g_n[j]
        while lv > 0:
            j = self.variant(i, lv)
            if j is not None:
                n, s = self.g_n[j] - self.base_n[j], self.g_sum[j] - self.base_s[j]
                if not (n >= p.min_guided and s / n >= p.withdraw_at):
                    break
                self.withdrawn += 1
            lv -= 1
        if lv == 0 and self.level[i] > 0:  # guidance over: "never solved" counts unguided evidence from here
            self.base_s[i], self.base_n[i] = self.reward_sum[i], self.n_samples[i]
        self.level[i] = lv
        return i if lv == 0 else int(self.variant(i, lv))

    def variants(self) -> np.ndarray:
        """Pool indices of every guided variant. Cached: a variant is only ever added by variant() (the pool grows)
        or restored by a load (new arrays), so the pool's size and the array's identity key it; scanning 10^6
        items per selection was most of the wrapper's cost."""
        key = (self.pool.size, self.guided_of)
        cached = self.__dict__.get("_variants")
        if cached is None or cached[0] != key[0] or cached[1] is not key[1]:
            cached = self.__dict__["_variants"] = (*key, np.flatnonzero(key[1] >= 0))
        return cached[2]

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        variants = self.variants()
        busy = variants[exclude[variants]] if exclude is not None else variants[:0]
        # the inner strategy picks originals only; an original whose variant is out waits. The marks go into the
        # caller's mask (or the scratch one) and are taken back after: no pool-sized copy per selection
        mask = self.scratch_mask() if exclude is None else exclude
        marked = np.concatenate([variants, self.guided_of[busy]])
        was = mask[marked]
        mask[marked] = True
        try:
            picked = self.inner.select(n, mask).indices
        finally:
            mask[marked] = was  # (`was` holds the values before any mark: a repeated index gets its own back)
        out = picked.copy()
        for k in np.flatnonzero((self.level[picked] > 0) | self.never_solved(picked)).tolist():  # the rest: as picked
            out[k] = self.guide(int(picked[k]))
        return out

    def allocate(self, indices: np.ndarray) -> np.ndarray:
        orig = np.where(self.guided_of[indices] >= 0, self.guided_of[indices], indices)
        return self.inner.allocate(orig)

    def details(self) -> dict:
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(self.level_n > 0, self.level_sum / self.level_n, np.nan)
        levels = [{"level": L, "groups": int(self.level_groups[L]), "rollouts": int(self.level_n[L]),
                   "pass_rate": None if np.isnan(rate[L]) else float(rate[L])} for L in range(1, len(rate))]
        return {"inner": self.inner.details(),
                "guidance": {"fired": self.fired, "withdrawn": self.withdrawn,
                             "guided_now": int((self.level > 0).sum()), "variants": int((self.guided_of >= 0).sum()),
                             "groups": int(self.level_groups.sum()), "rollouts": int(self.level_n.sum()),
                             "levels": levels}}
