"""pcl: Prompt Curriculum Learning (Gao et al. 2025, "Prompt Curriculum Learning for Efficient LLM
Post-Training").

An online value model V(x) predicts the current policy's pass rate on prompt x and is trained on the group
means the rollouts produce:

    V(x)  = clip(b + w · phi(x), 0, 1)            phi = hashed character n-grams (n = 1..3) + the category
    loss  = 1/2 (V(x) - mean_g)^2                 one SGD step per observed batch (MSE, as in the paper)

Each selection scores k*n random eligible candidates (k = `candidates`) with V and keeps the n with V closest
to 0.5 — the prompts of intermediate difficulty — WITHOUT spending rollouts on the rejected candidates; that
is the whole point against rollout-based filtering.

A simplification, said wherever results are quoted: the paper's value model is an LLM (the policy's own
backbone with a value head) reading the prompt; here it is a linear model on hashed n-grams, which the
controller can train on a CPU in microseconds per group. It learns what the prompt's surface shows (its
category, its length, its digits); it cannot understand the prompt. One SGD step per curriculum step (policy
version), on that step's groups; late results join the open step. Changing `dim_bits` live restarts the
model at the new size. Features are computed for candidates only, vectorised over the
concatenated UTF-8 bytes of their prompts, so the cost is independent of the pool size.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, model_validator

from curriculum.events import EventBatch
from curriculum.params import ItemLevelParams
from curriculum.registry import register
from curriculum.strategy import Strategy

_P1, _P2 = np.uint64(1_000_003), np.uint64(998_244_353)
MAX_BYTES = 512  # bytes of a prompt that the features read


def prompt_bytes(prompts: list[str], idx: np.ndarray) -> tuple[np.ndarray, bytes]:
    """(byte length per prompt, the concatenated bytes): each prompt's UTF-8 encoding cut at MAX_BYTES. ASCII
    prompts (the common case) are cut and encoded all at once, since a character is then one byte."""
    texts = [prompts[i][:MAX_BYTES] for i in idx.tolist()]
    joined = "".join(texts)
    if joined.isascii():
        return np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), joined.encode("ascii")
    raw = [prompts[i].encode("utf-8", "replace")[:MAX_BYTES] for i in idx.tolist()]
    return np.fromiter(map(len, raw), dtype=np.int64, count=len(raw)), b"".join(raw)


class PCLParams(ItemLevelParams):
    candidates: int = Field(4, ge=1, description="candidates scored per selected prompt (the paper's k; "
                            "`k` is accepted as an alias)")
    lr: float = Field(0.5, gt=0, description="SGD learning rate of the value model")
    dim_bits: int = Field(14, ge=4, le=22, description="log2 of the hashed feature dimension")
    target: float = Field(0.5, ge=0, le=1, description="pass rate the selection aims at")

    @model_validator(mode="before")
    @classmethod
    def _old_name(cls, data: Any) -> Any:
        """`k`, the candidate count's name before it had one name in every strategy, is still accepted."""
        if isinstance(data, dict) and "k" in data:
            data = {**data, "candidates": data["k"]}
            del data["k"]
        return data


@register
class PCL(Strategy):
    name = "pcl"
    description = "Prompt Curriculum Learning: online value model on prompt n-grams picks V(x) near 0.5."
    Params = PCLParams
    state_attrs = ("w", "b", "mse")

    def setup(self) -> None:
        self.w = np.zeros(1 << self.params.dim_bits)
        self.b = 0.5
        self.mse = float("nan")  # EMA of the model's squared error on fresh groups (before its update)

    def features(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(segment, bucket, scale): sparse rows phi(x_i) for the items idx, each row L2-normalised."""
        lens, raw = prompt_bytes(self.pool.prompts, idx)
        buf = np.frombuffer(raw, dtype=np.uint8).astype(np.uint64)
        seg = np.repeat(np.arange(len(idx)), lens)
        pos = np.arange(len(buf)) - np.repeat(np.cumsum(lens) - lens, lens)
        segs, hashes = [], []
        for n in (1, 2, 3):
            ok = np.flatnonzero(pos >= n - 1)  # n-gram ending at this byte lies inside its prompt
            h = np.full(len(ok), np.uint64(n))
            for j in range(n):
                h = h * _P1 + buf[ok - j]
            segs.append(seg[ok])
            hashes.append(h)
        segs.append(np.arange(len(idx)))  # category feature
        hashes.append(self.pool.category[idx].astype(np.uint64) * _P2 + np.uint64(7))
        dim = 1 << self.params.dim_bits
        bucket = ((np.concatenate(hashes) * _P2) >> np.uint64(20)).astype(np.int64) & (dim - 1)
        # merge repeated n-grams into counts, then L2-normalise each row (keeps SGD stable for any length)
        key, cnt = np.unique(np.concatenate(segs) * dim + bucket, return_counts=True)
        seg_all, bucket = key // dim, key % dim
        norm = np.sqrt(np.bincount(seg_all, weights=cnt.astype(np.float64) ** 2, minlength=len(idx)))
        return seg_all, bucket, cnt / norm[seg_all]

    def predict(self, idx: np.ndarray) -> np.ndarray:
        self.on_grow(0, 0)
        seg, bucket, scale = self.features(idx)
        z = self.b + np.bincount(seg, weights=self.w[bucket] * scale, minlength=len(idx))
        return np.clip(z, 0.0, 1.0)

    def on_grow(self, old_items: int, old_arms: int) -> None:
        if len(self.w) != 1 << self.params.dim_bits:  # dim_bits changed live: start the model afresh
            self.setup()

    def update(self, batch: EventBatch) -> None:
        self.on_grow(0, 0)
        seg, bucket, scale = self.features(batch.item)
        z = self.b + np.bincount(seg, weights=self.w[bucket] * scale, minlength=len(batch))
        err = np.clip(z, 0, 1) - batch.mean
        sq = float(np.mean(err**2))
        self.mse = sq if np.isnan(self.mse) else self.mse + 0.05 * (sq - self.mse)
        # gradient of the mean squared error w.r.t. the linear output (clip treated as identity)
        g = (z - batch.mean) / len(batch)
        self.w -= self.params.lr * np.bincount(bucket, weights=g[seg] * scale, minlength=len(self.w))
        self.b -= self.params.lr * float(g.sum())

    def choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        v = self.predict(candidates)
        return candidates[np.argsort(np.abs(v - self.params.target), kind="stable")[:n]]

    def details(self) -> dict:
        return {"value_mse": None if np.isnan(self.mse) else self.mse, "value_bias": self.b}
