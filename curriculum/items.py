"""The item pool: prompts with dense integer indices.

Pools reach 10^6 items, so everything a strategy reads per item lives in numpy arrays indexed by the dense
index; the string id -> index map is the only dict. Items are append-only: an index never changes, which
is what lets event logs, snapshots and leases refer to items by index.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_CATEGORY = "default"


class Item(BaseModel):
    """One prompt. `category` is the bandit arm (data source, difficulty level, task type)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    prompt: str
    category: str = Field(default=DEFAULT_CATEGORY, min_length=1, max_length=256)
    answer: str | None = None
    difficulty: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("difficulty")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("difficulty must be a finite number")
        return v


def grow(arr: np.ndarray, n: int, fill: Any) -> np.ndarray:
    """Return `arr` extended to length n along axis 0 (new rows = fill). Pools grow in rare, large
    steps (add_items), so exact sizing keeps every per-item array exactly pool-sized."""
    if len(arr) >= n:
        return arr
    new = np.full((n,) + arr.shape[1:], fill, dtype=arr.dtype)
    new[: len(arr)] = arr
    return new


class ItemPool:
    """Append-only catalogue of items with numpy columns (category index, prior difficulty)."""

    def __init__(self, items: Iterable[Item | dict] = ()) -> None:
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._prompts: list[str] = []
        self._answers: list[str | None] = []
        self._metadata: list[dict[str, Any]] = []
        self._cat = np.zeros(0, dtype=np.int32)
        self._difficulty = np.zeros(0, dtype=np.float64)
        self.categories: list[str] = []
        self._cat_index: dict[str, int] = {}
        self.add(items)

    # -- building ------------------------------------------------------------------------------
    def add(self, items: Iterable[Item | dict]) -> tuple[int, int]:
        """Add items, idempotent by id. Returns (added, existing)."""
        added = existing = 0
        new_cats: list[int] = []
        new_diff: list[float] = []
        for it in items:
            if not isinstance(it, Item):
                it = Item.model_validate(it)
            if it.id in self._index:
                existing += 1
                continue
            self._index[it.id] = len(self._ids)
            self._ids.append(it.id)
            self._prompts.append(it.prompt)
            self._answers.append(it.answer)
            self._metadata.append(it.metadata)
            c = self._cat_index.get(it.category)
            if c is None:
                c = self._cat_index[it.category] = len(self.categories)
                self.categories.append(it.category)
            new_cats.append(c)
            new_diff.append(np.nan if it.difficulty is None else it.difficulty)
            added += 1
        if added:
            n0 = len(self._cat)
            self._cat = np.concatenate([self._cat, np.asarray(new_cats, dtype=np.int32)])
            self._difficulty = np.concatenate([self._difficulty, np.asarray(new_diff, dtype=np.float64)])
            assert len(self._cat) == n0 + added
            self._arm_members = None
        return added, existing

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    @property
    def size(self) -> int:
        return len(self._ids)

    @property
    def num_categories(self) -> int:
        return len(self.categories)

    @property
    def category(self) -> np.ndarray:
        """int32 array: category index of every item."""
        return self._cat

    @property
    def difficulty(self) -> np.ndarray:
        """float64 array: prior difficulty of every item (nan where unknown)."""
        return self._difficulty

    @property
    def ids(self) -> list[str]:
        return self._ids

    @property
    def prompts(self) -> list[str]:
        return self._prompts

    def index_of(self, item_id: str) -> int | None:
        return self._index.get(item_id)

    def indices_of(self, item_ids: Iterable[str]) -> np.ndarray:
        """Dense indices for ids; raises KeyError naming the first unknown id."""
        out = []
        for i in item_ids:
            j = self._index.get(i)
            if j is None:
                raise KeyError(i)
            out.append(j)
        return np.asarray(out, dtype=np.int64)

    def item(self, idx: int) -> Item:
        return Item(
            id=self._ids[idx],
            prompt=self._prompts[idx],
            category=self.categories[self._cat[idx]],
            answer=self._answers[idx],
            difficulty=None if np.isnan(self._difficulty[idx]) else float(self._difficulty[idx]),
            metadata=self._metadata[idx],
        )

    def arm_members(self) -> list[np.ndarray]:
        """Item indices of each category (cached until the pool grows)."""
        if getattr(self, "_arm_members", None) is None:
            order = np.argsort(self._cat, kind="stable").astype(np.int64)
            counts = np.bincount(self._cat, minlength=self.num_categories)
            self._arm_members = np.split(order, np.cumsum(counts)[:-1])
            self._arm_sizes = counts.astype(np.int64)
            self._arm_order = (order, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        return self._arm_members

    def arm_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(items sorted by category, offsets): category a's items are order[offsets[a]:offsets[a + 1]], the
        same as arm_members()[a] (cached with it)."""
        self.arm_members()
        return self._arm_order

    def arm_sizes(self) -> np.ndarray:
        """Items per category (cached with arm_members; a copy, so callers may change it)."""
        self.arm_members()
        return self._arm_sizes.copy()

    def size_shares(self) -> np.ndarray:
        """Each arm's share of the pool's items: the arm mix uniform sampling over items draws."""
        sizes = self.arm_sizes().astype(np.float64)
        return sizes / max(sizes.sum(), 1.0)

    def to_items(self) -> list[Item]:
        return [self.item(i) for i in range(len(self))]

    # -- snapshots -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Columns, not one dict per item: at 10^6 items a per-item Item/dict round trip made a snapshot take tens
        of seconds; lists of strings, one JSON string of metadata and two arrays encode in about a second."""
        return {"ids": list(self._ids), "prompts": list(self._prompts), "answers": list(self._answers),
                "metadata": json.dumps(self._metadata, separators=(",", ":")), "categories": list(self.categories),
                "category": self._cat.copy(), "difficulty": self._difficulty.copy()}

    @classmethod
    def from_state_dict(cls, d: dict) -> ItemPool:
        """The pool of a snapshot (its items were validated when they were added)."""
        pool = cls()
        pool._ids, pool._prompts, pool._answers = list(d["ids"]), list(d["prompts"]), list(d["answers"])
        pool._metadata = json.loads(d["metadata"])
        pool.categories = list(d["categories"])
        pool._cat_index = {c: k for k, c in enumerate(pool.categories)}
        pool._cat = np.asarray(d["category"], dtype=np.int32)
        pool._difficulty = np.asarray(d["difficulty"], dtype=np.float64)
        pool._index = {i: k for k, i in enumerate(pool._ids)}
        if not (len(pool._index) == len(pool._ids) == len(pool._prompts) == len(pool._answers)
                == len(pool._metadata) == len(pool._cat) == len(pool._difficulty)):
            raise ValueError("pool snapshot: columns of different lengths or repeated ids")
        return pool
