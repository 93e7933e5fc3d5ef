"""Order estimation on a logged GRPO run (workers.order_log, workers.order_estimate): the identity order
reproduces theta_T, and FUT-1 beats the zeroth-order estimate on a swap of two adjacent batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.order_estimate_swaps import random_groups as _groups
from workers.grpo import Group, GRPOConfig
from workers.model import TinyModelConfig, build_tiny_model
from workers.order_estimate import eval_nll, exact_replay, kendall_distance, linear_replay, spearman
from workers.order_log import StepLogger, load_log, logged_grpo_step

STEPS = 3
WARM = 2  # unlogged steps first: the log starts from a used AdamW state, as a trainer's mid-run log does


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model, tok = build_tiny_model(TinyModelConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                  num_attention_heads=2, max_position_embeddings=32))
    cfg = GRPOConfig(lr=3e-3, max_grad_norm=1.0)
    folder = tmp_path_factory.mktemp("order-log")
    logger = StepLogger(folder, cfg, tok.pad_token_id)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(0)
    for _ in range(WARM):
        logged_grpo_step(model, opt, _groups(model, rng), cfg, tok.pad_token_id)
    for _ in range(STEPS):
        logged_grpo_step(model, opt, _groups(model, rng), cfg, tok.pad_token_id, logger=logger)
    logger.finish(model)
    return model, tok, load_log(folder)


def test_log_holds_each_step(logged):
    model, _, log = logged
    assert log.steps == STEPS
    assert all(len(g) == 3 for g in log.groups)
    assert log.adam[0]["step"] == WARM and log.adam[-1]["step"] == WARM + STEPS - 1
    assert not torch.equal(log.thetas[0], log.final)  # the run moved


def test_identity_order_reproduces_theta_T(logged):
    model, _, log = logged
    exact = exact_replay(model, log, list(range(STEPS)), skip_prefix=False)
    torch.testing.assert_close(exact, log.final, rtol=0, atol=1e-6)
    for moments in ("replayed", "frozen"):  # on the logged trajectory every JVP term is zero
        est = linear_replay(model, log, list(range(STEPS)), moments=moments, skip_prefix=False)
        torch.testing.assert_close(est["fut1"], log.final, rtol=0, atol=1e-5)
        torch.testing.assert_close(est["zeroth"], log.final, rtol=0, atol=1e-5)


def test_fut1_beats_zeroth_order_on_an_adjacent_swap(logged):
    model, _, log = logged
    for t in range(STEPS - 1):
        order = list(range(STEPS))
        order[t], order[t + 1] = order[t + 1], order[t]
        exact = exact_replay(model, log, order)
        est = linear_replay(model, log, order)
        if t == 1:  # starting from the logged theta_1 is the same as replaying step 0 from theta_0
            torch.testing.assert_close(exact_replay(model, log, order, skip_prefix=False), exact, rtol=0, atol=1e-6)
        assert (exact - log.final).norm() > 1e-4  # the order matters at this learning rate
        err1, err0 = (est["fut1"] - exact).norm(), (est["zeroth"] - exact).norm()
        assert err1 < err0, (t, float(err1), float(err0))


def test_eval_nll_moves_with_the_parameters(logged):
    model, tok, log = logged
    items = [{"prompt": "12+3=", "answer": "15"}, {"prompt": "4+4=", "answer": "8"}]
    a, b = eval_nll(model, tok, items, log.thetas[0]), eval_nll(model, tok, items, log.final)
    assert a > 0 and b > 0 and a != b


def test_kendall_and_spearman():
    assert kendall_distance([0, 1, 2, 3]) == 0.0
    assert kendall_distance([3, 2, 1, 0]) == 1.0
    assert kendall_distance([1, 0, 2, 3]) == pytest.approx(1 / 6)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_trainer_logs_only_when_it_can_be_replayed():
    from workers.trainer import TrainerConfig

    base = {"experiment": "e", "redis_url": "redis://x", "model_path": "m", "order_log_dir": "runs/log"}
    assert TrainerConfig(**base).order_log_dir == "runs/log"
    with pytest.raises(ValueError, match="num_workers"):
        TrainerConfig(**base, num_workers=2)
    with pytest.raises(ValueError, match="kl_beta"):
        TrainerConfig(**base, grpo=GRPOConfig(kl_beta=0.1))
    assert TrainerConfig(**{**base, "order_log_dir": None}, num_workers=2).num_workers == 2


def test_degenerate_groups_are_not_logged(tmp_path):
    model, tok = build_tiny_model(TinyModelConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                  num_attention_heads=2, max_position_embeddings=32))
    logger = StepLogger(tmp_path, GRPOConfig(), tok.pad_token_id)
    opt = torch.optim.AdamW(model.parameters())
    flat = Group([1, 5], [[6], [7]], [[-1.0], [-1.0]], [1.0, 1.0])
    logged_grpo_step(model, opt, [flat], GRPOConfig(), tok.pad_token_id, logger=logger)  # nothing to train on
    assert logger.steps == 0
    live = Group([1, 5], [[6], [7]], [[-1.0], [-1.0]], [1.0, 0.0])
    logged_grpo_step(model, opt, [flat, live], GRPOConfig(), tok.pad_token_id, logger=logger)
    logger.finish(model)
    log = load_log(tmp_path)
    assert log.steps == 1 and log.groups[0][0].rewards == [1.0, 0.0] and len(log.groups[0]) == 1
