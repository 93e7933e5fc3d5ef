"""Console views of `curriculum run`: the pass-rate map, the live progress table, per-evaluation log lines and
the closing summary tables (rich)."""
from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from curriculum.sources.arithmetic import NOISE
from deploy.config import RunConfig
from deploy.report import TIME_KEYS

console = Console()


def warm_table(warm: dict, targets: list[str], cfg: RunConfig, final: dict[str, dict] | None = None) -> Table:
    """The pass-rate map: per category, warm start (and, with `final`, each strategy's end of run)."""
    t = Table(title=f"pass-rate map (held-out items, {cfg.group_size} samples at T={cfg.temperature} / greedy exact; "
                    f"checksum {warm.get('checksum', '?')})")
    t.add_column("category")
    t.add_column("kind")
    t.add_column("warm start", justify="right")
    for name in final or {}:
        t.add_column(f"final, {name}", justify="right")
    for c in sorted(warm["pass_rate"], key=lambda c: (c == NOISE, len(c), c)):
        p = warm["pass_rate"][c]
        kind = ("noise" if c == NOISE else "target (partly solved)" if c in targets
                else "solved" if p > cfg.target_band[1] else "out of reach")
        cells = [f"{p:.2f} / {warm['greedy'][c]:.2f}"]
        cells += [f"{f['pass_rate'].get(c, 0):.2f} / {f['greedy'].get(c, 0):.2f}" for f in (final or {}).values()]
        t.add_row(c, kind, *cells)
    return t


def progress_table(name: str, cfg: RunConfig, history: list[dict], state: dict, elapsed: float) -> Table:
    last = history[-1] if history else {}
    evals = [h for h in history if "eval" in h]
    t = Table(title=f"{name}: step {last.get('step', 0)}/{cfg.train_steps}  {elapsed:.0f}s  "
                    f"rollouts ~{state['events'] * cfg.group_size:,}  degenerate {state['degenerate_ratio']:.0%}")
    t.add_column("level")
    t.add_column("arm weight", justify="right")
    t.add_column("pass rate", justify="right")
    t.add_column("greedy accuracy", justify="right")
    acc = evals[-1]["eval"] if evals else {}
    for a in state["arms"]:
        pr = a["pass_rate"]
        t.add_row(a["name"], f"{a['weight']:.2f}", "-" if pr is None else f"{pr:.2f}",
                  "-" if a["name"] not in acc else f"{acc[a['name']]:.2f}")
    return t


def eval_line(name: str, cfg: RunConfig, h: dict, elapsed: float) -> str:
    """One line per evaluation: a log that also reads well when not on a terminal."""
    acc = " ".join(f"{k}={v:.2f}/{h['eval'].get(k, 0):.2f}" for k, v in h["eval_pass"].items())
    return (f"{name} step {h['step']}/{cfg.train_steps} {elapsed:.0f}s "
            f"pass rate/greedy {acc}  train reward {h['mean_reward'] or 0:.2f}")


def print_summary(report: dict, cfg: RunConfig, out: Path) -> None:
    summary = report["summary"]
    console.print(
        warm_table(report["warm_start"], report["targets"], cfg, {s["label"]: s["final"] for s in summary})
    )
    t = Table(title=f"curriculum run: target = pass rate {report['target']:.2f} on {', '.join(report['targets'])} "
                    f"(warm start {report['warm_target_pass_rate']:.2f})")
    for c in ("strategy", "rollouts to target", "final target pass rate", "rollouts", "degenerate", "noise share",
              "wall s", "controller share"):
        t.add_column(c, justify="left" if c == "strategy" else "right")
    fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
    for s in summary:
        t.add_row(s["label"], fmt(s["rollouts_to_target"], ","), fmt(s["final_target_pass_rate"], ".2f"),
                  f"{s['rollouts']:,}", f"{s['degenerate_share']:.0%}", f"{s['noise_share']:.0%}",
                  f"{s['wall_s']:.0f}", f"{s['controller_share']:.1%}")
    console.print(t)
    t = Table(title="time as shares of each run's wall time (students and trainer overlap: shares add past 100%)")
    t.add_column("strategy")
    for k in TIME_KEYS:
        t.add_column(k.removesuffix("_s").replace("_", " "), justify="right")
    for s in summary:
        t.add_row(s["label"], *(f"{s['time_shares'][k]:.0%}" for k in TIME_KEYS))
    console.print(t)
    console.print(cost_table(summary))
    console.print(f"job wall time {report['job_wall_s']:.0f} s; report: {out.resolve()}/metrics.json, compare.png, "
                  "arm_weights.png (calibration.png for predicting strategies)")


def cost_table(summary: list[dict]) -> Table:
    """Tokens as well as rollouts (the service's cost accounting), and the predictions' calibration."""
    t = Table(title="cost in tokens, and how the strategy's predictions held up (— where it makes none)")
    cols = (("tokens", "tokens"), ("waste tokens", "waste_tokens"), ("tokens / informative group",
            "tokens_per_informative_group"), ("screen rollouts", "screen_rollouts"), ("re-tests", "skip_gate_retests"),
            ("Spearman", "calibration_spearman"), ("Brier", "calibration_brier"),
            ("gate precision", "skip_gate_precision"), ("gate recall", "skip_gate_recall"))
    t.add_column("strategy")
    for name, _ in cols:
        t.add_column(name, justify="right")
    for s in summary:
        vals = {**(s.get("cost") or {}), **(s.get("predictions") or {})}
        t.add_row(s["strategy"], *("—" if vals.get(k) is None else f"{vals[k]:,.3g}" if isinstance(vals[k], float)
                                   and vals[k] < 10 else f"{vals[k]:,.0f}" for _, k in cols))
    return t
