"""pcl's value model learns on the policy's reported embeddings when there are any, and is its n-gram stand-in
otherwise."""
import numpy as np
import pytest

from curriculum import EventBatch, ItemPool, codec, make_strategy

N = 40


def same_prompt_pool():
    """Every item looks the same to the n-gram model (one prompt, one category): only an embedding tells them
    apart."""
    return ItemPool([{"id": f"q{i}", "prompt": "7+8=", "category": "c"} for i in range(N)])


def embeddings(rng, d=16):
    """Items 0..N/2-1 are 'easy' (direction 0), the rest 'hard' (direction 1), with noise."""
    e = rng.normal(0, 0.2, (N, d))
    e[: N // 2, 0] += 3.0
    e[N // 2:, 1] += 3.0
    return e


def train(s, rng, steps=30, with_features=True):
    e = embeddings(np.random.default_rng(0))
    for v in range(1, steps + 1):
        idx = rng.choice(N, 16, replace=False)
        rewards = np.where(idx[:, None] < N // 2, 1.0, 0.0).repeat(4, axis=1)  # easy: always; hard: never
        feats = {"embedding": e[idx]} if with_features else None
        s.observe(EventBatch.from_arrays(idx, rewards, v, features=feats))


def test_with_embeddings_the_value_model_separates_what_ngrams_cannot():
    s = make_strategy("pcl", same_prompt_pool(), {"lr": 0.5})
    train(s, np.random.default_rng(1))
    v = s.predict(np.arange(N))
    assert v[: N // 2].min() > 0.7 and v[N // 2:].max() < 0.3
    assert s.details()["items_with_embedding"] > 0 and np.abs(s.u).sum() > 0


def test_without_embeddings_it_is_the_ngram_stand_in():
    s = make_strategy("pcl", same_prompt_pool(), {"lr": 0.5})
    train(s, np.random.default_rng(1), with_features=False)
    v = s.predict(np.arange(N))
    assert np.ptp(v) == 0  # one prompt text: the n-gram model cannot tell the items apart
    assert s.emb is None and not s.u.any() and s.details()["embedding_groups"] == 0
    # ignoring reported features ('' ) is exactly the n-gram model trained on the same groups
    off = make_strategy("pcl", same_prompt_pool(), {"lr": 0.5, "feature": ""})
    train(off, np.random.default_rng(1))
    assert off.emb is None and off.predict(np.arange(N)).tolist() == v.tolist() and off.w.tolist() == s.w.tolist()


def test_ngram_path_still_learns_from_prompt_text():
    pool = ItemPool([{"id": f"{c}{i}", "prompt": f"{c * 3} {i}", "category": c} for c in "ab" for i in range(20)])
    s = make_strategy("pcl", pool, {"lr": 0.5})
    for v in range(1, 30):
        s.observe(EventBatch.from_arrays([0, 1, 20, 21], [[1, 1], [1, 1], [0, 0], [0, 0]], v))
    p = s.predict(np.arange(40))
    assert p[:20].mean() > p[20:].mean() + 0.3


def test_embedding_steps_fold_the_same_in_any_split_and_snapshot():
    rng = np.random.default_rng(3)
    e = embeddings(rng)
    idx = rng.choice(N, 20, replace=False)
    step = EventBatch.from_arrays(idx, np.where(idx[:, None] < N // 2, 1.0, 0.0).repeat(2, axis=1), 1,
                                  features={"embedding": e[idx]})
    one = make_strategy("pcl", same_prompt_pool(), {})
    one.observe(step)
    many = make_strategy("pcl", same_prompt_pool(), {})
    for k in (2, 0, 1):
        many.observe(step.subset(np.arange(20) % 3 == k))
    assert one.u.tolist() == pytest.approx(many.u.tolist(), abs=1e-12)
    assert np.array_equal(one.emb, many.emb, equal_nan=True) and one.emb_mean.tolist() == many.emb_mean.tolist()
    restored = make_strategy("pcl", same_prompt_pool(), {}, seed=9)
    restored.load_state_dict(codec.decode(codec.encode(one.state_dict())))
    assert restored.predict(np.arange(N)).tolist() == one.predict(np.arange(N)).tolist()
