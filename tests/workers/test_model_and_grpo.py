"""The tiny policy, the `hf` backend's logprobs and weight updates, and one GRPO step on a fixed batch."""
from __future__ import annotations

import pytest
import torch

from workers.backends.hf import HFBackend
from workers.grpo import Group, GRPOConfig, grpo_step, sft_step, token_logprobs
from workers.model import TinyModelConfig, build_tiny_model, load_policy, save_policy

PROMPTS = ["1+2=", "7+5=", "3+3=", "9+9=", "12+30="]


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    model, tok = build_tiny_model(TinyModelConfig(seed=1))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):  # a few SFT steps so greedy outputs are not all the same token
        sft_step(model, opt, tok, PROMPTS, ["3", "12", "6", "18", "42"])
    return save_policy(model, tok, tmp_path_factory.mktemp("policy") / "p")


def test_tokenizer_round_trips_characters(policy):
    _, tok = load_policy(policy)
    text = "12+30=42 Answer: x"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


@pytest.mark.parametrize("temperature", [0.0, 0.7, 1.0])
def test_sampler_logprobs_equal_a_forward_pass(policy, temperature):
    be = HFBackend(str(policy), device="cpu")
    outs = be.generate(PROMPTS, 4, max_tokens=6, temperature=temperature, seed=0)
    seqs = [(c.prompt_ids, c.token_ids) for group in outs for c in group]
    with torch.no_grad():  # the trainer's logprobs at the sampling temperature (pi_old of the ratio)
        lp, mask = token_logprobs(be.model, seqs, be.tok.pad_token_id, temperature)
    flat = [c for group in outs for c in group]
    for b, c in enumerate(flat):
        assert len(c.token_ids) == len(c.logprobs) <= 6
        assert c.finish_reason == ("stop" if c.token_ids[-1] == be.tok.eos_token_id else "length")
        # left-padded batched sampling vs an unpadded forward pass at the same temperature: same numbers
        torch.testing.assert_close(lp[b][mask[b]], torch.tensor(c.logprobs), atol=1e-4, rtol=1e-4)
    if temperature == 0:  # greedy: every sample of a prompt is the same
        assert all(len({tuple(c.token_ids) for c in g}) == 1 for g in outs)


def test_max_tokens_is_honoured(policy):
    be = HFBackend(str(policy), device="cpu")
    for n in (1, 3):
        assert all(len(c.token_ids) <= n for g in be.generate(PROMPTS, 2, max_tokens=n, seed=1) for c in g)


def test_weight_update_is_followed(policy):
    be = HFBackend(str(policy), device="cpu")
    before = [g[0].token_ids for g in be.generate(PROMPTS, 1, max_tokens=4, temperature=0)]
    other, _ = build_tiny_model(TinyModelConfig(seed=7))
    be.update_weights(other.state_dict(), 5)
    after = [g[0].token_ids for g in be.generate(PROMPTS, 1, max_tokens=4, temperature=0)]
    fresh = HFBackend("", model=other, tokenizer=be.tok, device="cpu")
    assert be.version == 5
    assert after == [g[0].token_ids for g in fresh.generate(PROMPTS, 1, max_tokens=4, temperature=0)]
    assert after != before


def test_grpo_step_raises_logprob_of_rewarded_completions(policy):
    model, tok = load_policy(policy)
    be = HFBackend("", model=model, tokenizer=tok, device="cpu")
    groups = []
    for g in be.generate(PROMPTS, 8, max_tokens=4, temperature=1.0, seed=3):
        # reward the completions that start with the most common first token: a fixed, learnable preference
        firsts = [c.token_ids[0] for c in g]
        rewarded = max(set(firsts), key=firsts.count)
        rewards = [1.0 if c.token_ids[0] != rewarded else 0.0 for c in g]  # the minority is rewarded
        groups.append(Group(g[0].prompt_ids, [c.token_ids for c in g], [c.logprobs for c in g], rewards))
    live = [g for g in groups if not g.degenerate]
    assert live, "the fixed batch must have mixed rewards"

    def seq_logprob(good: bool) -> float:
        seqs = [(g.prompt_ids, c) for g in live for c, r in zip(g.completions, g.rewards) if (r > 0) == good]
        with torch.no_grad():
            lp, mask = token_logprobs(model, seqs, tok.pad_token_id)
        return float((lp * mask).sum() / len(seqs))

    good0, bad0 = seq_logprob(True), seq_logprob(False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    m = grpo_step(model, opt, groups + [Group([1], [[3], [3]], [[-1.0], [-1.0]], [1.0, 1.0])],
                  GRPOConfig(lr=1e-3), tok.pad_token_id)
    assert m["degenerate"] == len(groups) + 1 - len(live)
    good1, bad1 = seq_logprob(True), seq_logprob(False)
    assert good1 > good0 and bad1 < bad0


def test_grpo_loss_is_zero_gradient_for_degenerate_groups(policy):
    model, tok = load_policy(policy)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    m = grpo_step(model, torch.optim.AdamW(model.parameters(), lr=1e-2),
                  [Group([1, 5], [[6], [7]], [[-1.0], [-2.0]], [0.5, 0.5])], GRPOConfig(), tok.pad_token_id)
    assert m["degenerate"] == 1 and m["tokens"] == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_kl_to_the_reference_is_zero_at_start_and_grows_after_steps(policy):
    from workers.grpo import grpo_loss

    model, tok = load_policy(policy)
    ref, _ = load_policy(policy)
    be = HFBackend("", model=model, tokenizer=tok, device="cpu")
    groups = [
        Group(g[0].prompt_ids, [c.token_ids for c in g], [c.logprobs for c in g], [float(i % 2) for i in range(8)])
        for g in be.generate(PROMPTS, 8, max_tokens=4, temperature=1.0, seed=5)
    ]
    cfg = GRPOConfig(lr=1e-3, kl_beta=0.1)
    _, m0 = grpo_loss(model, groups, cfg, tok.pad_token_id, ref_model=ref)
    assert abs(m0["kl"]) < 1e-6
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(3):
        grpo_step(model, opt, groups, cfg, tok.pad_token_id, ref_model=ref)
    _, m1 = grpo_loss(model, groups, cfg, tok.pad_token_id, ref_model=ref)
    assert m1["kl"] > 1e-5


class FixedLogits(torch.nn.Module):
    """A 'model' whose next-token logits are one learnable row for every position: log-probs known by hand."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.row = torch.nn.Parameter(torch.tensor(logits))

    def forward(self, input_ids, attention_mask=None):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.row.expand(*input_ids.shape, -1))


def test_grpo_loss_equals_the_hand_computed_value_with_clipping_and_kl():
    import math

    from workers.grpo import grpo_loss

    # policy p = (1/4, 3/4) over tokens {0, 1}; reference (1/2, 1/2); the sampler's pi_old = 1/2 for both tokens
    policy, ref = FixedLogits([0.0, math.log(3.0)]), FixedLogits([0.0, 0.0])
    g = Group([2], [[1], [0]], [[math.log(0.5)], [math.log(0.5)]], [1.0, 0.0])  # A = (+1, -1)
    cfg = GRPOConfig(clip_low=0.2, clip_high=0.28, kl_beta=0.1)
    loss, m = grpo_loss(policy, [g], cfg, pad_id=3, ref_model=ref)
    # token 1: ratio 0.75/0.5 = 1.5, A = +1: min(1.5, clip 1.28) = 1.28
    # token 0: ratio 0.25/0.5 = 0.5, A = -1: min(-0.5, -clip 0.8) = -0.8
    surrogate = -(1.28 - 0.8) / 2
    # k3 with d = log ref - log pi: token 1 d = log(2/3), token 0 d = log 2
    k3 = lambda d: math.exp(d) - d - 1  # noqa: E731
    kl = (k3(math.log(2 / 3)) + k3(math.log(2))) / 2
    assert m["kl"] == pytest.approx(kl, abs=1e-6) and m["clip_frac"] == 1.0 and m["tokens"] == 2
    assert loss.item() == pytest.approx(surrogate + 0.1 * kl, abs=1e-6)  # -0.24 + 0.1 * 0.18949...
    # at sampling temperature 2 the policy is softmax(logits / 2) = (1/(1+sqrt 3), sqrt 3/(1+sqrt 3))
    hot = Group([2], [[1], [0]], [[math.log(0.5)], [math.log(0.5)]], [1.0, 0.0], temperature=2.0)
    loss_t, m_t = grpo_loss(policy, [hot], GRPOConfig(clip_low=0.2, clip_high=0.28), pad_id=3)
    p1 = math.sqrt(3) / (1 + math.sqrt(3))
    r1, r0 = p1 / 0.5, (1 - p1) / 0.5  # 1.268 (inside the clip range), 0.732 (below 0.8: clipped)
    assert loss_t.item() == pytest.approx(-(min(r1, 1.28) - max(r0, 0.8)) / 2, abs=1e-6)
    assert m_t["clip_frac"] == 0.5
