"""grpo_step on 2 CPU ranks (gloo, DDP-wrapped model): a rank with no usable groups must still take part in the
step's collective calls, or the other rank waits forever in the all-reduce. Both ranks must end with the same
weights, equal to one single-process step over the union of their groups."""
from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from workers.grpo import Group, GRPOConfig, grpo_step
from workers.model import TinyModelConfig, build_tiny_model

CFG = TinyModelConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, seed=3)
GRPO = GRPOConfig(lr=1e-2)


def _groups(rank: int) -> list[Group]:
    """Rank 0: two usable groups (one per step); rank 1: only a degenerate group, i.e. nothing to train on."""
    if rank == 0:
        return [Group([1, 5], [[6, 2], [7, 2]], [[-1.0, -0.5], [-2.0, -0.5]], [1.0, 0.0]),
                Group([1, 8], [[9], [10], [11]], [[-1.5], [-2.5], [-1.0]], [0.0, 1.0, 1.0])]
    return [Group([1, 5], [[6], [6]], [[-1.0], [-1.0]], [1.0, 1.0])]


def _rank(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model, tok = build_tiny_model(CFG)
    ddp = DistributedDataParallel(model)
    opt = torch.optim.AdamW(ddp.parameters(), lr=GRPO.lr)
    for g in _groups(rank):  # rank 0 steps on each usable group; rank 1 has only a degenerate one (then none)
        grpo_step(ddp, opt, [g], GRPO, tok.pad_token_id)
    if rank == 1:
        grpo_step(ddp, opt, [], GRPO, tok.pad_token_id)
    torch.save(model.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_finish_when_one_has_no_usable_groups(tmp_path):
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, 2, port, str(tmp_path)), daemon=True) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    hung = [p.pid for p in procs if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    assert not hung, "a rank hung in a collective call"
    assert [p.exitcode for p in procs] == [0, 0]
    w0, w1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert all(torch.equal(w0[k], w1[k]) for k in w0), "ranks diverged"
    # the same two steps in one process over the union of the groups (rank 1 contributed none)
    model, tok = build_tiny_model(CFG)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=GRPO.lr)
    for g in _groups(0):
        grpo_step(model, opt, [g], GRPO, tok.pad_token_id)
    ref = model.state_dict()
    assert all(torch.allclose(w0[k], ref[k], atol=1e-6) for k in w0)
    assert any(not torch.equal(w0[k], init[k]) for k in w0), "the steps changed nothing"
