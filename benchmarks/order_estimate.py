"""Sample-order estimation checked against exact retraining (issue 18, deliverable 6; METHODS §G3).

One short logged GRPO run of the tiny model (CPU): a short SFT warm start on arithmetic, a few unlogged GRPO
steps (so the logged AdamW state is a used one, as mid-run), then `--steps` logged steps of `--groups`
non-degenerate groups each. Then `--orders` random orders of the same logged groups, spread in distance from
the logged order (order i shuffles a random subset of k_i positions, k_i from 2 to all): for each, the exact
replay (ground truth), FUT-1 and the zeroth-order estimate (workers.order_estimate; moments replayed, and with
`--frozen` also the frozen-moment variant). The evaluation loss is the mean NLL of reference answers on held-out
problems. Reports the Spearman rank correlation of predicted vs exact loss over the orders, the errors against
the Kendall-tau distance of the order, a table, JSON and a plot.

Caveat: the replays train on the SAME logged groups in another order (off-policy); they do not say what another
curriculum would have sampled. Exact replay is cheap at this size: the point is to validate the estimate.

    .venv/bin/python benchmarks/order_estimate.py                 # the measured setting (docs/results.md)
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from curriculum.sources.arithmetic import ArithmeticSource
from workers.backends.hf import HFBackend
from workers.grpo import Group, GRPOConfig, grpo_step
from workers.model import build_tiny_model
from workers.order_estimate import eval_nll, exact_replay, kendall_distance, linear_replay, spearman
from workers.order_log import StepLogger, load_log, logged_grpo_step
from workers.verifiers import digits
from workers.warm_start import WarmStartConfig, warm_start

RESULTS = Path(__file__).parent / "results"
LEVELS = (1, 2, 3)


def rollout_groups(be, tok, src, rng, n: int, args) -> list[Group]:
    """n non-degenerate groups of fresh problems (levels uniform), sampled from the current policy."""
    live: list[Group] = []
    while len(live) < n:
        probs = [p for d in rng.choice(LEVELS, n) for p in src.problems(int(d), 1, rng)]
        gens = be.generate([p for p, _ in probs], args.group_size, args.max_tokens, 1.0,
                           seed=int(rng.integers(2**31)))
        for (_, answer), c in zip(probs, gens):
            g = Group(c[0].prompt_ids, [x.token_ids for x in c], [x.logprobs for x in c],
                      [digits({"answer": answer}, x.text) for x in c])
            if not g.degenerate:
                live.append(g)
    return live[:n]


def logged_run(args, folder: Path):
    """Warm start, unlogged GRPO steps, then the logged ones. Returns (model, tok, held-out items)."""
    model, tok = build_tiny_model()
    src = ArithmeticSource(max_digits=3)
    warm_start(model, tok, src, WarmStartConfig(steps=args.sft_steps, batch=32, warmup_steps=20))
    rng = np.random.default_rng(args.seed)
    cfg = GRPOConfig(lr=args.lr)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    be = HFBackend("", model=model, tokenizer=tok, device="cpu")
    logger = StepLogger(folder, cfg, tok.pad_token_id)
    for step in range(args.warm_steps + args.steps):
        groups = rollout_groups(be, tok, src, rng, args.groups, args)
        if step < args.warm_steps:
            grpo_step(model, opt, groups, cfg, tok.pad_token_id)
        else:
            logged_grpo_step(model, opt, groups, cfg, tok.pad_token_id, logger=logger)
    logger.finish(model)
    return model, tok, held_out(args)


def held_out(args) -> list[dict]:
    src = ArithmeticSource(max_digits=3)
    return [{"prompt": p, "answer": a} for d in LEVELS
            for p, a in src.problems(d, args.eval_items, np.random.default_rng([args.seed, d, 99]))]


def orders(steps: int, n: int, rng) -> list[list[int]]:
    """n orders of range(steps); order i shuffles a random subset of k_i positions (k_i from 2 to steps)."""
    out = []
    for i in range(n):
        k = int(round(2 + (steps - 2) * i / max(n - 1, 1)))
        order = list(range(steps))
        while order == list(range(steps)):  # a subset's shuffle can leave it in place: draw again
            pos = rng.choice(steps, k, replace=False)
            for p, q in zip(pos, rng.permutation(pos)):
                order[p] = int(q)
        out.append(order)
    return out


def evaluate_orders(model, tok, log, evals, ords, frozen: bool) -> list[dict]:
    rows = []
    for i, order in enumerate(ords):
        t0 = time.perf_counter()
        exact = exact_replay(model, log, order)
        t1 = time.perf_counter()
        est = linear_replay(model, log, order)
        t2 = time.perf_counter()
        if frozen:
            est.update({k + "_frozen": v for k, v in linear_replay(model, log, order, moments="frozen").items()})
        row = {"order": order, "kendall": kendall_distance(order), "exact": eval_nll(model, tok, evals, exact),
               "exact_s": t1 - t0, "fut1_s": t2 - t1,
               "param_moved": float((exact - log.final).norm())}
        for k, v in est.items():
            row[k] = eval_nll(model, tok, evals, v)
            row[k + "_param_err"] = float((v - exact).norm())
        rows.append(row)
        print(f"order {i:2d} kendall {row['kendall']:.3f} exact {row['exact']:.5f} fut1 {row['fut1']:.5f} "
              f"zeroth {row['zeroth']:.5f} ({row['exact_s']:.1f}s exact, {row['fut1_s']:.1f}s fut1)", flush=True)
    return rows


def summarise(rows: list[dict], ref_loss: float) -> dict:
    exact = [r["exact"] for r in rows]
    kd = [r["kendall"] for r in rows]
    out = {"reference_loss": ref_loss, "exact_loss_range": [min(exact), max(exact)],
           "exact_loss_std": float(np.std(exact))}
    names = [k for k in ("fut1", "zeroth", "fut1_frozen", "zeroth_frozen") if k in rows[0]]
    for k in names:
        err = [abs(r[k] - r["exact"]) for r in rows]
        out[k] = {"spearman": spearman([r[k] for r in rows], exact), "loss_mae": float(np.mean(err)),
                  "param_err_mean": float(np.mean([r[k + "_param_err"] for r in rows])),
                  "spearman_err_vs_kendall": spearman(err, kd)}
    # "no estimate": predict the logged run's own final loss for every order
    out["reference"] = {"loss_mae": float(np.mean([abs(ref_loss - e) for e in exact])),
                        "param_err_mean": float(np.mean([r["param_moved"] for r in rows]))}
    return out


def plot(rows: list[dict], summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    exact = np.array([r["exact"] for r in rows])
    kd = np.array([r["kendall"] for r in rows])
    for k, mark in (("fut1", "o"), ("zeroth", "x"), ("fut1_frozen", "^")):
        if k in rows[0]:
            pred = np.array([r[k] for r in rows])
            a.scatter(exact, pred, marker=mark, label=f"{k} (Spearman {summary[k]['spearman']:.2f})")
            b.scatter(kd, np.abs(pred - exact), marker=mark, label=k)
    lo, hi = exact.min(), exact.max()
    a.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    a.set(xlabel="exact-replay eval NLL", ylabel="predicted eval NLL", title="predicted vs exact, per order")
    b.scatter(kd, np.abs(summary["reference_loss"] - exact), marker=".", c="grey", label="no estimate")
    b.set(xlabel="Kendall-tau distance from the logged order", ylabel="|predicted - exact| eval NLL",
          yscale="log", title="error vs distance")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def print_table(rows: list[dict], summary: dict) -> None:
    print("| order | Kendall d | exact NLL | FUT-1 | zeroth | FUT-1 param err | zeroth param err | moved |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, r in enumerate(rows):
        print(f"| {i} | {r['kendall']:.3f} | {r['exact']:.5f} | {r['fut1']:.5f} | {r['zeroth']:.5f} | "
              f"{r['fut1_param_err']:.2e} | {r['zeroth_param_err']:.2e} | {r['param_moved']:.2e} |")
    print(json.dumps(summary, indent=1))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sft-steps", type=int, default=200)
    p.add_argument("--warm-steps", type=int, default=4, help="unlogged GRPO steps before the log starts")
    p.add_argument("--steps", type=int, default=16, help="logged GRPO steps")
    p.add_argument("--groups", type=int, default=6, help="non-degenerate groups per step")
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=6)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--eval-items", type=int, default=32, help="held-out problems per level")
    p.add_argument("--orders", type=int, default=20)
    p.add_argument("--frozen", action="store_true", help="also the frozen-moment FUT-1 (twice the JVPs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="")
    p.add_argument("--log-dir", default="runs/order-estimate")
    p.add_argument("--reuse-log", action="store_true", help="replay the finished log in --log-dir, no new run")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    t0 = time.time()
    if args.reuse_log and (Path(args.log_dir) / "final.pt").exists():
        (model, tok), evals = build_tiny_model(), held_out(args)
    else:
        model, tok, evals = logged_run(args, Path(args.log_dir))
    log = load_log(args.log_dir)
    t_run = time.time() - t0
    ords = orders(log.steps, args.orders, np.random.default_rng([args.seed, 1]))
    rows = evaluate_orders(model, tok, log, evals, ords, args.frozen)
    summary = summarise(rows, eval_nll(model, tok, evals, log.final))
    summary.update(seconds_logged_run=round(t_run, 1), seconds_total=round(time.time() - t0, 1))
    print_table(rows, summary)
    RESULTS.mkdir(exist_ok=True)
    name = "order_estimate" + (f"_{args.tag}" if args.tag else "")
    (RESULTS / f"{name}.json").write_text(json.dumps({"args": vars(args), "summary": summary, "rows": rows},
                                                     indent=1))
    plot(rows, summary, RESULTS / f"{name}.png")
    return summary


if __name__ == "__main__":
    main()
