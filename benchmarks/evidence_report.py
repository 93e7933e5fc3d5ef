"""Tables and figures of the evidence matrix, from the cell files alone (benchmarks/evidence.py writes them)."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.evidence_metric import BASELINE, BUDGET_SHARES, LABELS, bootstrap_interval, cell_metrics, ratio


def load_cells(setting_dir: Path) -> dict[str, list[dict]]:
    """noise variant -> its cells."""
    out: dict[str, list[dict]] = {}
    for f in sorted(setting_dir.glob("*/*/seed*.json")):
        out.setdefault(f.parts[-3], []).append(json.loads(f.read_text()))
    return out


def fmt_ratio(s: dict) -> str:
    if s["median_ratio"] is None:
        return "—"
    iv = s["interval"]
    bounded = any(x["bound"] for x in s["seeds"])
    txt = f"{s['median_ratio']:.2f}x" + (f" [{iv[0]:.2f}, {iv[1]:.2f}]" if iv else "")
    return txt + (" (bounds)" if bounded else "")


def fmt_diff(s: dict) -> str:
    d = s["auc_diff"]
    if d is None:
        return "—"
    iv = s["auc_diff_interval"]
    return f"{d:+.3f}" + (f" [{iv[0]:+.3f}, {iv[1]:+.3f}]" if iv else "") + f" ({s['auc_wins']}/{s['paired']} ahead)"


def fmt_hard(s: dict) -> str:
    if s["hardest_diff"] is None:
        return "—"
    return f"{s['hardest']} {s['hardest_diff']:+.3f} ({s['hardest_lower']}/{s['paired']} seeds lower)"


def table(noise: str, cells: list[dict], summary: dict) -> list[str]:
    c0 = cells[0]
    targets = ", ".join(c0["targets"])
    lines = [f"### noise `{noise}`: target levels {targets}, warm {c0['warm_target']:.3f} → target "
             f"{c0['target']:.3f}; warm-start map checksum `{c0['warm_start'].get('checksum', '?')}`", "",
             "| strategy | seeds | reached | median rollouts to target | ratio vs uniform+DS: median [95% CI] | "
             "worst seed | at 25% / 50% / 100% of uniform's budget | AUC | AUC − uniform+DS, paired: mean "
             "[95% CI] | final per target level | hardest level's final − uniform+DS, paired | coin share | "
             "wall s / cell |",
             "|---|---:|---:|---:|---|---:|---|---:|---|---|---|---:|---:|"]
    order = [k for k in LABELS if k in summary]
    for label in order:
        s = summary[label]
        reached = [x["to_target"] for x in s["seeds"] if x["to_target"] is not None]
        med = sorted(reached)[len(reached) // 2] if reached else None
        finals = {}
        for x in s["seeds"]:
            for k in c0["targets"]:
                finals.setdefault(k, []).append(x["final"].get(k, float("nan")))
        fin = " ".join(f"{k} {statistics.median(v):.3f}" for k, v in finals.items())
        worst = "—" if s["worst_ratio"] is None else f"{s['worst_ratio']:.2f}x"
        share = statistics.median(x["noise_share"] for x in s["seeds"])
        lines.append(f"| {label} | {len(s['seeds'])} | {s['reached']} | {'—' if med is None else f'{med:,}'} | "
                     f"{'(reference)' if label == BASELINE else fmt_ratio(s)} | {worst} | "
                     f"{s['at_25']:.3f} / {s['at_50']:.3f} / {s['at_100']:.3f} | {s['auc']:.3f} | {fmt_diff(s)} | "
                     f"{fin} | {fmt_hard(s)} | {share:.2f} | {s['wall_s']:.0f} |")
    return lines + [""] + cost_table(cells, order)


def cost_table(cells: list[dict], order: list[str]) -> list[str]:
    """Per cell that recorded them (cells run before the service's cost accounting reached the record have none):
    the service's own cost accounting and the calibration of the strategy's lease-time predictions."""
    rows = [c for label in order for c in sorted(cells, key=lambda c: c["seed"])
            if c["label"] == label and c.get("cost")]
    if not rows:
        return []
    f = lambda v, fmt: "—" if v is None else format(v, fmt)  # noqa: E731
    lines = ["Cost (the service's accounting, whole run) and calibration of lease-time predictions:", "",
             "| strategy | seed | rollouts | tokens | waste share | tokens / informative group | screening "
             "rollouts | gate re-test rollouts | Spearman (run / latest) | Brier | gate precision / recall |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for c in rows:
        cost, pr = c["cost"], c.get("predictions") or {}
        cells_ = [f"{cost['rollouts']:,}", f"{cost['tokens']:,}", f(cost["waste_share"], ".2f"),
                  f(cost["tokens_per_informative_group"], ".1f"), f(pr.get("screen_rollouts"), ",.0f"),
                  f(pr.get("skip_gate_retest_rollouts"), ",.0f"),
                  f"{f(pr.get('calibration_spearman'), '.2f')} / {f(pr.get('calibration_spearman_latest'), '.2f')}",
                  f(pr.get("calibration_brier"), ".3f"),
                  f"{f(pr.get('skip_gate_precision'), '.2f')} / {f(pr.get('skip_gate_recall'), '.2f')}"]
        lines.append(f"| {c['label']} | {c['seed']} | " + " | ".join(cells_) + " |")
    return lines + [""]


def figure(setting: str, groups: dict[str, list[dict]], path: Path) -> None:
    """Per noise variant: mean target pass rate against rollouts, per strategy the median over seeds on a common
    grid, over the min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.2), squeeze=False)
    for ax, (noise, cells) in zip(axes[0], sorted(groups.items())):
        labels = [k for k in LABELS if any(c["label"] == k for c in cells)]
        for k, label in enumerate(labels):
            runs = [c["curve"] for c in cells if c["label"] == label]
            top = min(r[-1]["rollouts"] for r in runs)
            grid = np.linspace(0, top, 60)
            ys = np.array([np.interp(grid, [p["rollouts"] for p in r], [p["pass_rate"] for p in r]) for r in runs])
            ax.plot(grid, np.median(ys, axis=0), color=f"C{k}", label=f"{label} ({len(runs)} seeds)")
            ax.fill_between(grid, ys.min(axis=0), ys.max(axis=0), color=f"C{k}", alpha=0.18)
        ax.axhline(cells[0]["target"], color="grey", ls="--", lw=0.8, label="target")
        ax.set(title=f"{setting}, noise {noise}: targets {', '.join(cells[0]['targets'])}",
               xlabel="rollouts generated", ylabel="mean target pass rate")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summarise(cells: list[dict]) -> dict:
    """One (setting, noise) group of cells -> per strategy: primary and secondary readings across seeds."""
    by = {}
    for c in cells:
        by.setdefault(c["label"], {})[c["seed"]] = c
    base = by.get(BASELINE, {})
    c0 = cells[0]
    hard = min(c0["targets"], key=lambda k: c0["warm_start"]["pass_rate"][k], default=None)  # lowest warm rate
    rows_by = {}
    for label, seeds in by.items():
        rows = rows_by[label] = []
        for seed, c in sorted(seeds.items()):
            budget = base[seed]["curve"][-1]["rollouts"] if seed in base else c["curve"][-1]["rollouts"]
            m = cell_metrics(c["curve"], c["target"], budget)
            r, bound = ratio(cell_metrics(base[seed]["curve"], c["target"], budget), m) if seed in base else (None, "")
            rows.append({"seed": seed, **m, "ratio": r, "bound": bound, "wall_s": c["cell_wall_s"],
                         "final": c["final"].get("pass_rate", {}), "noise_share": noise_share(c)})
    # uniform+DS's own rows are read against its own budget: the reference of the paired differences
    ref = {x["seed"]: x for x in rows_by.get(BASELINE, [])}
    out = {}
    for label, rows in rows_by.items():
        ratios = [x["ratio"] for x in rows if x["ratio"]]
        # the secondary metric, paired: same seed, same evaluation items and evaluation seeds as uniform+DS
        pairs = [(x, ref[x["seed"]]) for x in rows if x["seed"] in ref] if label != BASELINE else []
        diffs = [x["auc"] - r["auc"] for x, r in pairs]
        # the goal "the hardest level does not end below uniform's", paired by seed
        hard_diffs = [x["final"][hard] - r["final"][hard] for x, r in pairs if hard in x["final"]]
        out[label] = {"seeds": rows, "median_ratio": statistics.median(ratios) if ratios else None,
                      "worst_ratio": min(ratios) if ratios else None, "interval": bootstrap_interval(ratios),
                      "reached": sum(x["to_target"] is not None for x in rows),
                      **{f"at_{int(s * 100)}": statistics.median(x[f"at_{int(s * 100)}"] for x in rows)
                         for s in BUDGET_SHARES},
                      "auc": statistics.median(x["auc"] for x in rows),
                      "auc_diff": statistics.fmean(diffs) if diffs else None,
                      "auc_diff_interval": bootstrap_interval(diffs, geometric=False),
                      "auc_wins": sum(d > 0 for d in diffs), "paired": len(diffs), "hardest": hard,
                      "hardest_diff": statistics.fmean(hard_diffs) if hard_diffs else None,
                      "hardest_lower": sum(d < 0 for d in hard_diffs),
                      "wall_s": statistics.median(x["wall_s"] for x in rows)}
    return out


def noise_share(c: dict) -> float:
    """Share of rollouts spent on the coin category (mislabeled / judge items hide inside the levels)."""
    return c["rollouts_by_category"].get("noise", 0) / max(sum(c["rollouts_by_category"].values()), 1)



def write_reports(out: Path) -> list[Path]:
    written = []
    dirs = sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []
    for setting_dir in [p for p in dirs if p.name not in ("work", "stack", "warm-start")]:
        groups = load_cells(setting_dir)
        if not groups:
            continue
        setting = setting_dir.name
        summaries = {n: summarise(cells) for n, cells in groups.items()}
        lines = [f"## {setting}", ""]
        for noise, cells in sorted(groups.items()):
            lines += table(noise, cells, summaries[noise])
        md, js, png = (out / f"evidence-{setting}.{ext}" for ext in ("md", "json", "png"))
        md.write_text("\n".join(lines))
        js.write_text(json.dumps({"setting": setting, "summary": summaries}, indent=1))
        figure(setting, groups, png)
        written += [md, js, png]
    return written
