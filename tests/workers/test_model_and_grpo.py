"""The tiny policy, the `hf` backend's logprobs and weight updates, and one GRPO step on a fixed batch."""
from __future__ import annotations

import pytest
import torch

from workers.backends.hf import HFBackend
from workers.grpo import GRPOConfig, Group, grpo_step, sft_step, token_logprobs
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


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_sampler_logprobs_equal_a_forward_pass(policy, temperature):
    be = HFBackend(str(policy), device="cpu")
    outs = be.generate(PROMPTS, 4, max_tokens=6, temperature=temperature, seed=0)
    seqs = [(c.prompt_ids, c.token_ids) for group in outs for c in group]
    with torch.no_grad():
        lp, mask = token_logprobs(be.model, seqs, be.tok.pad_token_id)
    flat = [c for group in outs for c in group]
    for b, c in enumerate(flat):
        assert len(c.token_ids) == len(c.logprobs) <= 6
        assert c.finish_reason == ("stop" if c.token_ids[-1] == be.tok.eos_token_id else "length")
        # left-padded batched sampling vs an unpadded forward pass: same numbers (temperature 1 = the policy)
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
    groups = [Group(g[0].prompt_ids, [c.token_ids for c in g], [c.logprobs for c in g], [float(i % 2) for i in range(8)])
              for g in be.generate(PROMPTS, 8, max_tokens=4, temperature=1.0, seed=5)]
    cfg = GRPOConfig(lr=1e-3, kl_beta=0.1)
    _, m0 = grpo_loss(model, groups, cfg, tok.pad_token_id, ref_model=ref)
    assert abs(m0["kl"]) < 1e-6
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(3):
        grpo_step(model, opt, groups, cfg, tok.pad_token_id, ref_model=ref)
    _, m1 = grpo_loss(model, groups, cfg, tok.pad_token_id, ref_model=ref)
    assert m1["kl"] > 1e-5
