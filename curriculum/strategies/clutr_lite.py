"""clutr_lite: a regret teacher over a frozen task representation, after CLUTR (Azad et al. 2023, "CLUTR:
Curriculum Learning via Unsupervised Task Representation Learning", arXiv 2210.10243).

CLUTR learns a task manifold first (a recurrent VAE), freezes it, and lets a teacher pick tasks in it by regret.
The lite version (METHODS.md §F2) for a prompt pool:

* **Representation, computed once.** Hashed character n-grams (n = 1..3, L2-normalised) and the prompt length,
  projected by PCA to `dims` dimensions and clustered by k-means into `clusters` clusters, fitted on up to
  `fit_items` items of the pool as it is at the first selection. Never refitted (CLUTR's point: a frozen
  manifold keeps the curriculum stable); items added later join their nearest frozen centroid.
* **Regret proxy per group** (PAIRED's max-minus-mean with one policy): regret_g = max_i r_i - mean_g; for
  binary rewards 1[any success] - p_hat, whose expectation 1 - (1-p)^G - p peaks below p = 0.5.
* **Teacher.** After each step, for every cluster c with groups in it: Q_c <- (1 - eta) Q_c + eta * mean regret;
  clusters are drawn from (1 - eps) softmax(Q / tau) + eps / K, items uniformly inside a cluster.

It needs no categories: the clusters are its arms. Not the VAE, not PAIRED's antagonist: a fixed small encoder
and a single policy's best-of-G attempt stand in for them. A coin-flip grader has regret ~0.5 forever, so the
noise guard (NoiseGuardParams, on by default; our addition) judges clusters, not categories: a cluster judged
noise is capped at floor / K.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from pydantic import Field

from curriculum.events import EventBatch
from curriculum.noise_guard import GUARD_ARM, NoiseGuard
from curriculum.params import GuardedParams
from curriculum.registry import register
from curriculum.sampling import EMPTY, softmax
from curriculum.strategies.pcl import prompt_bytes
from curriculum.strategy import Strategy

_P1, _P2 = np.uint64(1_000_003), np.uint64(998_244_353)


class ClutrLiteParams(GuardedParams):
    clusters: int = Field(8, ge=1, le=256, description="k-means clusters (the teacher's arms)")
    dims: int = Field(16, ge=1, le=64, description="PCA dimensions of the frozen representation")
    fit_items: int = Field(4096, ge=8, description="items (a seeded sample) the representation is fitted on")
    feature_bits: int = Field(8, ge=4, le=12, description="log2 of the hashed n-gram dimension")
    length_weight: float = Field(1.0, ge=0, description="weight of the prompt length (per character) against the "
                                 "unit-norm n-gram vector")
    eta: float = Field(0.1, gt=0, le=1, description="learning rate of Q per cluster")
    tau: float = Field(0.1, gt=0, description="softmax temperature over Q")
    eps: float = Field(0.05, ge=0, le=1, description="uniform exploration share over clusters")


def regret(rewards: np.ndarray) -> np.ndarray:
    """max - mean of each group (rows nan-padded)."""
    return np.nanmax(rewards, axis=1) - np.nanmean(rewards, axis=1)


def ngram_features(prompts: list[str], bits: int, length_weight: float) -> np.ndarray:
    """Dense (n, 2^bits + 1) rows: hashed 1..3-gram counts (L2-normalised), then length_weight x characters."""
    dim = 1 << bits
    out = np.zeros((len(prompts), dim + 1))
    # all prompts at once, over their concatenated UTF-8 bytes (cut at 512 each): a loop per prompt cost ~1 ms,
    # minutes for a pool of 10^6; the counts are whole numbers, so the order they are added in changes nothing
    lens, raw = prompt_bytes(prompts, np.arange(len(prompts)))
    buf = np.frombuffer(raw, dtype=np.uint8).astype(np.uint64)
    seg = np.repeat(np.arange(len(prompts)), lens)
    left = np.repeat(lens, lens) - (np.arange(len(buf)) - np.repeat(np.cumsum(lens) - lens, lens))  # bytes from here
    for n in (1, 2, 3):
        at = np.flatnonzero(left >= n)  # an n-gram starting at this byte lies inside its prompt
        h = np.full(len(at), np.uint64(n))
        for j in range(n):
            h = h * _P1 + buf[at + j]
        np.add.at(out, (seg[at], ((h * _P2) >> np.uint64(20)).astype(np.int64) & (dim - 1)), 1.0)
    out[:, :dim] /= np.maximum(np.linalg.norm(out[:, :dim], axis=1, keepdims=True), 1e-12)
    # the length apart from the n-grams: unit-norm n-gram rows of equally long prompts differ by ~1, so a weight
    # of 1 per character lets lengths (digits of arithmetic, terms of a sum) separate, as difficulty often does
    out[:, dim] = length_weight * np.array([len(p) for p in prompts], dtype=np.float64)
    return out


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 25) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding; returns the centroids (k' <= k when x has fewer points)."""
    k = min(k, len(x))
    cent = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min(((x[:, None, :] - np.array(cent)[None]) ** 2).sum(-1), axis=1)
        cent.append(x[rng.choice(len(x), p=d / d.sum())] if d.sum() > 0 else x[rng.integers(len(x))])
    c = np.array(cent)
    for _ in range(iters):
        lab = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        c = np.array([x[lab == j].mean(axis=0) if (lab == j).any() else c[j] for j in range(k)])
    return c


class ClusterGuard(NoiseGuard):
    """The noise guard's evidence and gate over clusters instead of pool categories. Its arrays live in the
    strategy's state (`guard`: snapshotted and rewound with the step); this object only folds and reads them."""

    def __init__(self, arrays: dict[str, np.ndarray], params: GuardedParams) -> None:
        self.pool = SimpleNamespace(num_categories=len(arrays["mix_n"]))
        self.params = params
        for name in GUARD_ARM:
            setattr(self, name, arrays[name])

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in GUARD_ARM}


@register
class ClutrLite(Strategy):
    name = "clutr_lite"
    description = "CLUTR-lite: regret teacher (max - mean reward) over k-means clusters of a frozen prompt encoding."
    Params = ClutrLiteParams
    item_state = {"cluster": (np.int64, -1)}
    state_attrs = ("q", "guard", "mean", "basis", "centroids")
    step_attrs = ("q", "guard")  # the representation never changes after it is fitted

    def setup(self) -> None:
        self.q = np.zeros(0)
        self.guard: dict[str, np.ndarray] = {}
        self.mean = self.basis = self.centroids = np.zeros(0)

    def embed(self, idx: np.ndarray) -> np.ndarray:
        f = ngram_features([self.pool.prompts[i] for i in idx.tolist()], self.params.feature_bits,
                           self.params.length_weight)
        return (f - self.mean) @ self.basis

    def fit(self) -> None:
        """Fit the frozen representation on a seeded sample (its own RNG: the strategy's draws are untouched)."""
        rng = np.random.default_rng([self.seed, 7_777])
        n = self.pool.size
        idx = np.sort(rng.choice(n, min(n, self.params.fit_items), replace=False))
        f = ngram_features([self.pool.prompts[i] for i in idx.tolist()], self.params.feature_bits,
                           self.params.length_weight)
        self.mean = f.mean(axis=0)
        _, _, vt = np.linalg.svd(f - self.mean, full_matrices=False)
        self.basis = vt[: self.params.dims].T
        self.centroids = kmeans((f - self.mean) @ self.basis, self.params.clusters, rng)
        self.q = np.zeros(len(self.centroids))
        self.guard = {name: np.zeros(len(self.q)) for name in GUARD_ARM}

    def on_grow(self, old_items: int, old_arms: int) -> None:
        if self.pool.size == 0:
            return
        if len(self.centroids) == 0:
            self.fit()
            old_items = 0
        for lo in range(old_items, self.pool.size, 4096):  # new items join their nearest frozen centroid
            idx = np.arange(lo, min(lo + 4096, self.pool.size))
            z = self.embed(idx)
            self.cluster[idx] = np.argmin(((z[:, None, :] - self.centroids[None]) ** 2).sum(-1), axis=1)
        self.__dict__.pop("_members", None)

    def _guard_fold(self, cat: np.ndarray, batch: EventBatch, before: np.ndarray) -> None:
        """The guard's evidence per cluster as well (a coin-flip prompt has regret ~0.5 forever: without the guard
        the teacher pours its rollouts into such a cluster)."""
        super()._guard_fold(cat, batch, before)
        if len(self.q):
            g = ClusterGuard(self.guard, self.params)
            g._guard_fold(self.cluster[batch.item], batch, before)
            self.guard = g.arrays()

    def update(self, batch: EventBatch) -> None:
        c = self.cluster[batch.item]
        k = len(self.q)
        n = np.bincount(c, minlength=k)
        mean_regret = np.bincount(c, weights=regret(batch.rewards), minlength=k) / np.maximum(n, 1)
        seen = n > 0
        self.q[seen] += self.params.eta * (mean_regret[seen] - self.q[seen])

    def cluster_probs(self) -> np.ndarray:
        """(1 - eps) softmax(Q / tau) + eps / K, with clusters judged noise capped at floor / K."""
        k = len(self.q)
        p = (1 - self.params.eps) * softmax(self.q, self.params.tau) + self.params.eps / max(k, 1)
        noisy = ClusterGuard(self.guard, self.params).noise_gate() if k else np.zeros(0, dtype=bool)
        if noisy.any() and not noisy.all():
            capped = np.minimum(p[noisy], self.params.noise_guard.floor / k)
            p[~noisy] *= (1 - capped.sum()) / p[~noisy].sum()
            p[noisy] = capped
        return p

    def members(self) -> list[np.ndarray]:
        """The items of each cluster (index order), kept until the clusters change (the pool grows or a snapshot is
        loaded): grouping 10^6 items per selection cost more than the rest of the selection."""
        got = self.__dict__.get("_members")
        if got is None or got[0] != (self.pool.size, len(self.q)):
            order = np.argsort(self.cluster, kind="stable")
            split = np.split(order, np.cumsum(np.bincount(self.cluster, minlength=len(self.q)))[:-1])
            got = self.__dict__["_members"] = ((self.pool.size, len(self.q)), split)
        return got[1]

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        if not len(self.q):
            return EMPTY
        members = self.members()
        taken = self.scratch_mask()
        probs, out, need = self.cluster_probs().copy(), [], n
        try:
            for _ in range(len(probs) + 1):  # a cluster that runs out hands its remainder to the others
                if need <= 0 or probs.sum() <= 0:
                    break
                counts = self.rng.multinomial(need, probs / probs.sum())
                for c in np.flatnonzero(counts).tolist():
                    got = self.random_candidates(int(counts[c]), exclude, members[c], taken)
                    taken[got] = True
                    out.append(got)
                    need -= len(got)
                    if len(got) < counts[c]:
                        probs[c] = 0
        finally:
            for got in out:  # the scratch mask goes back clean
                taken[got] = False
        return np.concatenate(out) if out else EMPTY

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        self.__dict__.pop("_members", None)

    def details(self) -> dict:
        sizes = np.bincount(self.cluster[self.cluster >= 0], minlength=len(self.q))
        noisy = ClusterGuard(self.guard, self.params).noise_gate() if len(self.q) else []
        return {"clusters": [{"q": float(q), "p": float(p), "items": int(s), "noise": bool(z)}
                             for q, p, s, z in zip(self.q, self.cluster_probs(), sizes, noisy)]}
