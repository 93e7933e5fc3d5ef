"""The run report's cost and calibration parts (deploy.report, deploy.views), on a real experiment's /state."""
import numpy as np

from curriculum.experiment import ExperimentConfig, ExperimentState
from curriculum.simulator import SimConfig, SimulatedStudent
from deploy.report import calibration_history, plot_calibration, predictions
from deploy.views import cost_table


def final_state(strategy, params):
    student = SimulatedStudent(SimConfig(categories=2, noisy=0, items_per_category=30), seed=0)
    st = ExperimentState(ExperimentConfig(name="r", strategy=strategy, params=params), student.items())
    for v in range(12):
        b = st.apply({"op": "lease", "n": 8, "worker": "w", "lease_seconds": 60, "now": v, "batch_id": f"b{v}"})
        idx = st.pool.indices_of([it["id"] for it in b["items"]])
        r = student.rollout(idx, np.array([it["num_samples"] for it in b["items"]]))
        st.apply({"op": "report", "now": v, "results": [
            {"item_id": it["id"], "rewards": row[~np.isnan(row)].tolist(), "policy_version": v,
             "signals": {"tokens": 3.0 * (~np.isnan(row)).sum()}} for it, row in zip(b["items"], r)]})
    return st.describe()


def test_report_reads_cost_and_calibration_and_plots_them(tmp_path):
    screened = final_state("screen", {"inner": {"name": "uniform"}})
    plain = final_state("uniform", {})
    p = predictions(screened)
    assert p["cost"]["tokens"] == 3 * p["cost"]["rollouts"] > 0
    assert p["predictions"]["screen_rollouts"] > 0 and p["predictions"]["calibration_resolved"] > 0
    assert predictions(plain)["predictions"] is None and predictions(plain)["cost"]["rollouts"] == 12 * 8 * 8
    runs = [{"final_state": screened}, {"final_state": plain}]
    assert calibration_history(runs[0])["version"] == list(range(12)) and calibration_history(runs[1]) is None
    plot_calibration(runs, [{"strategy": "screen"}, {"strategy": "uniform"}], tmp_path / "calibration.png")
    assert (tmp_path / "calibration.png").stat().st_size > 10_000
    table = cost_table([{"strategy": "screen", **p}, {"strategy": "uniform", **predictions(plain)}])
    assert table.row_count == 2 and len(table.columns) == 10
