"""Duplicate detection in bounded memory: rollout ids are kept for the last `window` policy versions only.

A result is a duplicate when its rollout id was applied while it is still remembered. A result whose
policy_version is at or below `floor` (the newest version already forgotten) cannot be checked any more, so it
is not applied either and counts as a duplicate: a resend that arrives more than `window` policy versions after
its rollout was acknowledged is ignored (and a first report that late is too; samples of a policy that many
steps old are off-policy for GRPO anyway). Memory: the ids of `window` policy versions, not of the whole run.
"""
from __future__ import annotations

from collections.abc import Iterable

WINDOW = 8  # policy versions whose rollout ids are remembered


class SeenIds:
    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self.by_version: dict[int, set[str]] = {}
        self.floor = -1  # results at or below this policy version are too old to check

    def __len__(self) -> int:
        return sum(len(s) for s in self.by_version.values())

    def is_duplicate(self, rollout_id: str, version: int) -> bool:
        return version <= self.floor or any(rollout_id in s for s in self.by_version.values())

    def add(self, pairs: Iterable[tuple[str, int]]) -> None:
        for rid, v in pairs:
            self.by_version.setdefault(v, set()).add(rid)

    def advance(self, current: int) -> None:
        """Forget the ids of versions older than the window that ends at `current`."""
        old = [v for v in self.by_version if v <= current - self.window]
        for v in old:
            del self.by_version[v]
        if old:
            self.floor = max(self.floor, *old)

    def state_dict(self) -> dict:
        return {"window": self.window, "floor": self.floor,
                "by_version": [[v, sorted(ids)] for v, ids in sorted(self.by_version.items())]}

    @classmethod
    def from_state_dict(cls, d: dict | list, version: int = 0) -> SeenIds:
        if isinstance(d, list):  # a snapshot from before the window: every id, version unknown
            s = cls()
            s.by_version[version] = set(d)
            return s
        s = cls(d["window"])
        s.floor = d["floor"]
        s.by_version = {int(v): set(ids) for v, ids in d["by_version"]}
        return s
