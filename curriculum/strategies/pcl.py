"""pcl: Prompt Curriculum Learning (Gao et al. 2025, "Prompt Curriculum Learning for Efficient LLM
Post-Training").

An online value model V(x) predicts the current policy's pass rate on prompt x and is trained on the group
means the rollouts produce:

    V(x)  = clip(b + w · phi(x) + u · psi(x), 0, 1)   phi = hashed character n-grams (n = 1..3) + the category
                                                      psi = the policy's own embedding of x, when reported
    loss  = 1/2 (V(x) - mean_g)^2                     one SGD step per observed batch (MSE, as in the paper)

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

The policy's embedding (closer to the paper, whose value model reads the prompt with the policy's backbone): when
workers report the feature `embedding` (the `hf` backend's mean last-layer token state of the prompt), each item
keeps its latest one, projected to `embed_dim` numbers by a fixed random matrix (so the state stays O(items) at
any model width); psi(x) is that projection, centred on a running mean of all of them (a model's hidden states
share a large common direction) and scaled to unit length, and 0 for an item with no reported embedding. So the
model learns on the embeddings wherever there are any, and is exactly the n-gram stand-in where there are none
(e.g. a `vllm` worker, which reports none). The per-item projections are allocated with the first embedding.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from curriculum.events import EventBatch
from curriculum.items import grow
from curriculum.params import ItemLevelParams
from curriculum.registry import register
from curriculum.sampling import smallest
from curriculum.strategy import Strategy

_P1, _P2 = np.uint64(1_000_003), np.uint64(998_244_353)
MAX_BYTES = 512  # bytes of a prompt that the features read
TEXT_BUDGET = 1 << 28  # bytes of prompt text PCL keeps as one buffer (see PromptText)


def prompt_bytes(prompts: list[str], idx: np.ndarray) -> tuple[np.ndarray, bytes]:
    """(byte length per prompt, the concatenated bytes): each prompt's UTF-8 encoding cut at MAX_BYTES. ASCII
    prompts (the common case) are cut and encoded all at once, since a character is then one byte."""
    texts = [prompts[i] for i in idx.tolist()] if len(idx) < 2 else list(itemgetter(*idx.tolist())(prompts))
    if max(map(len, texts), default=0) > MAX_BYTES:  # cutting is rare: copying every prompt cost more than hashing
        texts = [t[:MAX_BYTES] for t in texts]
    joined = "".join(texts)
    if joined.isascii():
        return np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), joined.encode("ascii")
    raw = [prompts[i].encode("utf-8", "replace")[:MAX_BYTES] for i in idx.tolist()]
    return np.fromiter(map(len, raw), dtype=np.int64, count=len(raw)), b"".join(raw)


def ngram_hashes(lens: np.ndarray, codes: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(segments, hashes) of the n-grams (n = 1, 2, 3) of prompts of `lens` bytes, concatenated in `codes`: per n, the
    prompt and hash of each n-gram inside its prompt, in byte order. The hash of the n-gram ending at byte p is
    (..((n P1 + b[p]) P1 + b[p-1]) ..) P1 + b[p-n+1] mod 2^64, computed for every byte at once from shifted copies
    (wrapping uint64 arithmetic: any grouping of the terms gives the same value)."""
    b0 = codes.astype(np.uint64)
    b1, b2 = np.zeros_like(b0), np.zeros_like(b0)
    b1[1:], b2[2:] = b0[:-1], b0[:-2]
    seg = np.repeat(np.arange(len(lens)), lens)
    pos = np.arange(len(b0)) - np.repeat(np.cumsum(lens) - lens, lens)
    q = b0 * _P1 + b1
    h3 = q * _P1 + b2 + np.uint64(3) * _P1 * _P1 * _P1
    m2, m3 = pos >= 1, pos >= 2  # the n-gram ending here lies inside its prompt
    return [seg, seg[m2], seg[m3]], [b0 + _P1, (q + np.uint64(2) * _P1 * _P1)[m2], h3[m3]]


class PromptText:
    """The pool's prompts as one byte buffer, each as prompt_bytes() gives it, built once and extended as the pool
    grows (its prompts are append-only): gathering 1,024 random prompts out of 10^6 Python strings cost a cache
    miss per object, a third of a selection. Off (None) past TEXT_BUDGET bytes: then each read takes the strings."""

    def __init__(self) -> None:
        self.prompts: list[str] | None = None
        self.buf: np.ndarray | None = np.zeros(0, dtype=np.uint8)
        self.offsets = np.zeros(1, dtype=np.int64)

    def gather(self, prompts: list[str], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(byte length per prompt, their concatenated bytes as uint8) for the items idx, or None (off)."""
        if prompts is not self.prompts or len(prompts) < len(self.offsets) - 1:
            self.__init__()
            self.prompts = prompts
        n = len(self.offsets) - 1
        if len(prompts) > n and self.buf is not None:
            lens, raw = prompt_bytes(prompts[n:], np.arange(len(prompts) - n))
            if len(self.buf) + len(raw) > TEXT_BUDGET:
                self.buf = None
            else:
                self.buf = np.concatenate([self.buf, np.frombuffer(raw, dtype=np.uint8)])
                self.offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lens)])
        if self.buf is None:
            return None
        start = self.offsets[idx]
        lens = self.offsets[idx + 1] - start
        pos = np.repeat(start - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))
        return lens, self.buf[pos]


class PCLParams(ItemLevelParams):
    candidates: int = Field(4, ge=1, description="candidates scored per selected prompt (the paper's k; "
                            "`k` is accepted as an alias)")
    lr: float = Field(0.5, gt=0, description="SGD learning rate of the value model")
    dim_bits: int = Field(14, ge=4, le=22, description="log2 of the hashed feature dimension")
    target: float = Field(0.5, ge=0, le=1, description="pass rate the selection aims at")
    feature: str = Field("embedding", max_length=32, description="reported feature read as the policy's embedding "
                         "of the prompt ('' ignores reported features)")
    embed_dim: int = Field(32, ge=1, le=256, description="numbers kept per item of its projected embedding")

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
    state_attrs = ("w", "b", "mse", "u", "emb_mean", "emb_groups", "emb")
    # `emb` (the items' projected embeddings) is not rewound at each report of a step: a fold only overwrites
    # rows with the step's latest values, so folding the step again writes the same rows
    step_attrs = ("w", "b", "mse", "u", "emb_mean", "emb_groups")

    def setup(self) -> None:
        self.w = np.zeros(1 << self.params.dim_bits)
        self.b = 0.5
        self.mse = float("nan")  # EMA of the model's squared error on fresh groups (before its update)
        self.u = np.zeros(self.params.embed_dim)  # weights on psi(x)
        self.emb_mean = np.zeros(self.params.embed_dim)
        self.emb_groups = 0  # groups that came with an embedding
        self.emb: np.ndarray | None = None  # (items, embed_dim) float32, nan rows: none reported yet
        self._proj: dict[int, np.ndarray] = {}

    def features(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(segment, bucket, scale): sparse rows phi(x_i) for the items idx, each row L2-normalised."""
        got = self.__dict__.setdefault("_text", PromptText()).gather(self.pool.prompts, idx)
        if got is None:
            lens, raw = prompt_bytes(self.pool.prompts, idx)
            got = lens, np.frombuffer(raw, dtype=np.uint8)
        segs, hashes = ngram_hashes(*got)
        segs.append(np.arange(len(idx)))  # category feature
        hashes.append(self.pool.category[idx].astype(np.uint64) * _P2 + np.uint64(7))
        dim = 1 << self.params.dim_bits
        bucket = ((np.concatenate(hashes) * _P2) >> np.uint64(20)).astype(np.int64) & (dim - 1)
        # merge repeated n-grams into counts, then L2-normalise each row (keeps SGD stable for any length)
        key = np.concatenate(segs) * dim + bucket
        if len(idx) * dim <= np.iinfo(np.int32).max:  # the same keys, sorted twice as fast
            key = key.astype(np.int32)
        key, cnt = np.unique(key, return_counts=True)
        key = key.astype(np.int64)
        seg_all, bucket = key // dim, key % dim
        norm = np.sqrt(np.bincount(seg_all, weights=cnt.astype(np.float64) ** 2, minlength=len(idx)))
        return seg_all, bucket, cnt / norm[seg_all]

    def linear(self, idx: np.ndarray) -> tuple[np.ndarray, tuple, np.ndarray]:
        """(b + w·phi + u·psi for the items idx, phi's sparse rows, psi's dense rows)."""
        self.on_grow(0, 0)
        seg, bucket, scale = self.features(idx)
        psi = self.psi(idx)
        z = self.b + np.bincount(seg, weights=self.w[bucket] * scale, minlength=len(idx)) + psi @ self.u
        return z, (seg, bucket, scale), psi

    def predict(self, idx: np.ndarray) -> np.ndarray:
        return np.clip(self.linear(idx)[0], 0.0, 1.0)

    def on_grow(self, old_items: int, old_arms: int) -> None:
        p = self.params
        if len(self.w) != 1 << p.dim_bits or len(self.u) != p.embed_dim:  # changed live: start afresh
            self.setup()
        if self.emb is not None and len(self.emb) < self.pool.size:
            self.emb = grow(self.emb, self.pool.size, np.nan)

    # -- the policy's embedding ------------------------------------------------------------------------
    def project(self, e: np.ndarray) -> np.ndarray:
        """(n, d) reported embeddings -> (n, embed_dim): a fixed Gaussian projection per width d (Johnson-
        Lindenstrauss: distances are kept up to a few percent), the same for every run and restore."""
        d, k = e.shape[1], self.params.embed_dim
        if d not in self._proj:
            self._proj[d] = np.random.default_rng(7919 * d + k).standard_normal((d, k)) / np.sqrt(k)
        return e @ self._proj[d]

    def store_embeddings(self, batch: EventBatch) -> None:
        got = batch.feature(self.params.feature) if self.params.feature else None
        if got is None or not got[1].any():
            return
        vals, present = got
        z = self.project(vals[present])
        if self.emb is None:
            self.emb = np.full((self.pool.size, self.params.embed_dim), np.nan, dtype=np.float32)
        if self.emb_groups == 0:  # (a step_attr: rewound with the step, unlike `emb`)
            self.emb_mean = z.mean(axis=0)
        self.emb[batch.item[present]] = z  # canonical order: a repeated item keeps its last
        self.emb_mean = self.emb_mean + 0.05 * (z.mean(axis=0) - self.emb_mean)
        self.emb_groups += int(present.sum())

    def psi(self, idx: np.ndarray) -> np.ndarray:
        """Centred, unit-length projected embeddings of the items idx (rows of 0 where none was reported)."""
        if self.emb is None:
            return np.zeros((len(idx), self.params.embed_dim))
        c = self.emb[idx].astype(np.float64) - self.emb_mean
        norm = np.linalg.norm(c, axis=1, keepdims=True)
        return np.where(np.isnan(norm) | (norm == 0), 0.0, c / np.where(norm > 0, norm, 1.0))

    def update(self, batch: EventBatch) -> None:
        self.store_embeddings(batch)
        z, (seg, bucket, scale), psi = self.linear(batch.item)
        err = np.clip(z, 0, 1) - batch.mean
        sq = float(np.mean(err**2))
        self.mse = sq if np.isnan(self.mse) else self.mse + 0.05 * (sq - self.mse)
        # gradient of the mean squared error w.r.t. the linear output (clip treated as identity)
        g = (z - batch.mean) / len(batch)
        self.w -= self.params.lr * np.bincount(bucket, weights=g[seg] * scale, minlength=len(self.w))
        self.b -= self.params.lr * float(g.sum())
        self.u -= self.params.lr * (psi.T @ g)

    def choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        v = self.predict(candidates)
        return candidates[smallest(np.abs(v - self.params.target), n)]

    def details(self) -> dict:
        return {"value_mse": None if np.isnan(self.mse) else self.mse, "value_bias": self.b,
                "embedding_groups": self.emb_groups,
                "items_with_embedding": 0 if self.emb is None else int((~np.isnan(self.emb[:, 0])).sum())}
