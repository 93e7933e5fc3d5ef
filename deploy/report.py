"""The report of `curriculum run`: each run's metrics (from the students' and the trainer's counters), the
summary per strategy (rollouts and seconds to the target pass rate, shares of degenerate and noise groups,
time split), metrics.json and the PNG plots."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from curriculum.calibration import find_part, live_summary
from curriculum.sources.arithmetic import NOISE
from deploy.config import RunConfig

#: how tables and plots name a strategy: the trainer drops zero-advantage groups under every strategy (DAPO's
#: dynamic sampling), so the registry's `uniform` is uniform sampling + dynamic sampling
LABELS = {"uniform": "uniform+DS", "uniform_guard": "uniform+guard", "target_only": "oracle-target"}


def label(strategy: str) -> str:
    return LABELS.get(strategy, strategy)


TIME_KEYS = ("generation_s", "verification_s", "controller_s", "student_queue_wait_s", "trainer_queue_wait_s",
             "optimizer_s")


def run_record(strategy: dict, name: str, started: float, wall: float, history: list[dict], state: dict,
               pool_status: dict, queue_stats: dict) -> dict:
    """One finished run's metrics, from the pool's worker counters and the trainer's per-step history."""
    workers = [w for w in pool_status["workers"].values() if "error" not in w]
    return {"strategy": strategy, "experiment": name, "wall_s": wall, "started": started, "history": history,
            "final_state": state, "workers": workers, "queue": queue_stats,
            "rollouts": int(sum(w["rollouts"] for w in workers)),
            "rollouts_by_category": {c: sum(w["by_category"].get(c, 0) for w in workers)
                                     for c in sorted({c for w in workers for c in w["by_category"]})},
            "time_split": {"generation_s": sum(w["generate_s"] for w in workers),
                           "verification_s": sum(w["score_s"] for w in workers),
                           "controller_s": sum(w["controller_s"] for w in workers),
                           "student_queue_wait_s": sum(w["waiting_s"] + w["queue_s"] for w in workers),
                           "trainer_queue_wait_s": sum(h["wait_s"] for h in history),
                           "optimizer_s": sum(h["train_s"] for h in history)}}


def controller_share(ts: dict) -> float:
    """The controller's share of the students' busy time (its calls, generation, verification)."""
    return ts["controller_s"] / max(ts["controller_s"] + ts["generation_s"] + ts["verification_s"], 1e-9)


def target_curve(run: dict, targets: list[str], group_size: int, warm: dict) -> list[dict]:
    """(rollouts generated so far, seconds, mean pass rate on the target levels) at the warm start and at every
    evaluation. Rollouts and tokens are read off the queue's `produced_samples` / `produced_tokens` counters:
    every sample the students generated, degenerate and stale ones and screens included (records made before
    those counters count groups x group_size)."""
    mean = lambda d: sum(d[c] for c in targets) / max(len(targets), 1)  # noqa: E731
    return [{"step": 0, "rollouts": 0, "tokens": 0, "seconds": 0.0, "pass_rate": mean(warm["pass_rate"]),
             "greedy": mean(warm["greedy"])}] + [
        {"step": h["step"], "rollouts": h["queue"].get("produced_samples", h["queue"]["produced"] * group_size),
         "tokens": h["queue"].get("produced_tokens"), "seconds": h["time"] - run["started"],
         "pass_rate": mean(h["eval_pass"]), "greedy": mean(h["eval"])} for h in run["history"] if "eval" in h]


def summarise_run(run: dict, cfg: RunConfig, warm: dict, targets: list[str], target: float) -> dict:
    h = run["history"]
    evals = [x for x in h if "eval" in x]
    curve = target_curve(run, targets, cfg.group_size, warm)
    hit = next((p for p in curve if p["pass_rate"] >= target), None)
    by_cat = run["rollouts_by_category"]
    return {"strategy": run["strategy"]["name"], "label": label(run["strategy"]["name"]),
            "wall_s": round(run["wall_s"], 1), "rollouts": run["rollouts"],
            "final": {"pass_rate": evals[-1]["eval_pass"], "greedy": evals[-1]["eval"]} if evals else {},
            "curve": curve, "rollouts_to_target": hit["rollouts"] if hit else None,
            "seconds_to_target": round(hit["seconds"], 1) if hit else None,
            "final_target_pass_rate": curve[-1]["pass_rate"] if curve else None,
            "degenerate_share": run["final_state"]["degenerate_ratio"],
            "noise_share": by_cat.get(NOISE, 0) / max(sum(by_cat.values()), 1),
            "rollouts_by_category": by_cat, "time_split": run["time_split"],
            "time_shares": {k: run["time_split"][k] / max(run["wall_s"], 1e-9) for k in TIME_KEYS},
            "controller_share": controller_share(run["time_split"]),
            **predictions(run["final_state"])}


def predictions(state: dict) -> dict:
    """The strategy's cost in rollouts and tokens, and how its lease-time predictions held up (None where it makes
    none): the service's own accounting, read off the final /state."""
    details = state.get("details", {})
    return {"cost": details.get("cost"), "predictions": live_summary(details) or None}


def calibration_history(run: dict) -> dict | None:
    """Per policy version: Spearman, Brier and (skip gate) precision / recall, from the final /state."""
    cal = find_part(run["final_state"].get("details", {}), "calibration")
    return cal["history"] if cal and cal.get("history") else None


def step_shares(run: dict) -> tuple[list[int], list[float], list[float]]:
    """Per trainer step: the degenerate share and the noise share of the groups the trainer read."""
    steps, degenerate, noise = [], [], []
    for x in run["history"]:
        read = x.get("read_by_category", {})
        n = sum(read.values())
        if n:
            steps.append(x["step"])
            degenerate.append(x["degenerate_dropped"] / n)
            noise.append(read.get(NOISE, 0) / n)
    return steps, degenerate, noise


def write_report(runs: list[dict], cfg: RunConfig, out: Path, warm: dict, targets: list[str]) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    base = sum(warm["pass_rate"][c] for c in targets) / max(len(targets), 1)
    target = min(base + cfg.target_gain, 1.0)
    summary = [summarise_run(run, cfg, warm, targets, target) for run in runs]
    report = {"warm_start": warm, "targets": targets, "target": target, "warm_target_pass_rate": base,
              "summary": summary}
    (out / "metrics.json").write_text(json.dumps({"config": cfg.model_dump(), **report, "runs": runs}, indent=1))
    plot_compare(runs, summary, targets, target, out / "compare.png")
    plot_arm_weights(runs, summary, out / "arm_weights.png")
    if any(calibration_history(r) for r in runs):
        plot_calibration(runs, summary, out / "calibration.png")
    return report


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_compare(runs: list[dict], summary: list[dict], targets: list[str], target: float, path: Path) -> None:
    """The joint plot: accuracy on the target levels against rollouts; degenerate and noise shares against steps."""
    plt = _pyplot()
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(17, 4.2))
    for k, (run, s) in enumerate(zip(runs, summary)):
        a1.plot([p["rollouts"] for p in s["curve"]], [p["pass_rate"] for p in s["curve"]], color=f"C{k}",
                marker=".", label=f"{s['label']} (pass rate)")
        a1.plot([p["rollouts"] for p in s["curve"]], [p["greedy"] for p in s["curve"]], color=f"C{k}", ls=":",
                label=f"{s['label']} (greedy exact)")
        steps, degenerate, noise = step_shares(run)
        a2.plot(steps, degenerate, color=f"C{k}", lw=0.8, label=s["label"])
        a3.plot(steps, noise, color=f"C{k}", lw=0.8, label=s["label"])
    a1.axhline(target, color="grey", ls="--", lw=0.8, label=f"target {target:.2f}")
    a1.set(title=f"accuracy on the target levels {', '.join(targets) or '(none)'}", xlabel="rollouts generated")
    a2.set(title="degenerate share of the groups read", xlabel="trainer step", ylim=(-0.02, 1.02))
    a3.set(title=f"share of the groups read that are '{NOISE}'", xlabel="trainer step", ylim=(-0.02, 1.02))
    for a in (a1, a2, a3):
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_arm_weights(runs: list[dict], summary: list[dict], path: Path) -> None:
    """Each run's arm weights over trainer steps, stacked."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for ax, run, s in zip(axes[0], runs, summary):
        h = run["history"]
        arms = sorted({a for x in h for a in x["arm_weights"]})
        ax.stackplot([x["step"] for x in h], [[x["arm_weights"].get(a, 0) for x in h] for a in arms], labels=arms)
        ax.set_title(f"{s['label']}: arm weights")
        ax.set_xlabel("trainer step")
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_calibration(runs: list[dict], summary: list[dict], path: Path) -> None:
    """How well each predicting strategy's model of the learner held up, per policy version: Spearman correlation
    of predicted vs realized pass rate, Brier score of 'degenerate', and the skip gate's precision and recall."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.2))
    for k, (run, s) in enumerate(zip(runs, summary)):
        h = calibration_history(run)
        if not h:
            continue
        v = h["version"]
        none = lambda xs: [float("nan") if x is None else x for x in xs]  # noqa: E731
        axes[0].plot(v, none(h["spearman"]), color=f"C{k}", lw=0.8, label=s["strategy"])
        axes[1].plot(v, none(h["brier"]), color=f"C{k}", lw=0.8, label=s["strategy"])
        if "gate_tp" in h:  # few re-tests per version: the running precision / recall over the versions shown
            tp, fp, fn, tp_w = (np.cumsum(none(h[c])) for c in ("gate_tp", "gate_fp", "gate_fn", "gate_tp_w"))
            with np.errstate(invalid="ignore", divide="ignore"):
                axes[2].plot(v, tp / (tp + fp), color=f"C{k}", lw=0.8, label=f"{s['strategy']} precision")
                axes[2].plot(v, tp_w / (tp_w + fn), color=f"C{k}", ls=":", lw=0.8, label=f"{s['strategy']} recall")
    axes[0].set(title="Spearman: predicted vs realized pass rate", xlabel="policy version", ylim=(-1.02, 1.02))
    axes[1].set(title="Brier score of 'degenerate' (lower is better)", xlabel="policy version", ylim=(-0.01, 1.01))
    axes[2].set(title="skip gate on its re-tests (running)", xlabel="policy version", ylim=(-0.02, 1.02))
    for a in axes:
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
