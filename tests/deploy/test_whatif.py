"""`curriculum whatif`: selection replay of a logged (simulated) run under another strategy."""
import json

import pytest
from typer.testing import CliRunner

from curriculum.whatif import CAVEAT, read_log, simulate_log, whatif, write_log
from deploy.cli import app

ADCL = {"chunk_size": 16, "g_est": 4, "period": 3}


@pytest.fixture(scope="module")
def log():
    return simulate_log("uniform", steps=10, seed=1)


def test_the_same_strategy_reproduces_the_logged_choices(log):
    cfg, records = log
    rep = whatif(cfg, records, "uniform")
    m = rep["summary"]
    assert m["identical"] and m["steps_that_differ"] == 0 and m["first_difference"] is None
    assert m["overlap"] == 1.0 and m["kept"] == 1.0 and m["arm_tv"] == 0.0
    assert m["pdeg_logged"] == m["pdeg_other"]
    assert rep["leases"] == 10 and rep["caveat"] == CAVEAT


def test_another_seed_or_strategy_differs_where_it_should(log):
    cfg, records = log
    reseeded = whatif(cfg, records, "uniform", seed=cfg.seed + 1)["summary"]
    assert not reseeded["identical"] and reseeded["overlap"] < 0.5
    assert reseeded["arm_tv"] < 0.3  # uniform either way: the arms agree though the items differ
    rep = whatif(cfg, records, "adcl", ADCL)
    m, first = rep["summary"], rep["per_step"][0]
    assert not m["identical"] and m["first_difference"] == 0
    # step 0 (two leases) picks almost only unseen items: Beta(1, 1) gives P(degenerate) = 2 / (g + 1) for a group
    # of g, so full groups of 8 (uniform) vs adcl's probes of 4 (a few of its items uniform had already seen)
    assert first["pdeg_logged"] == pytest.approx(2 / 9) and first["pdeg_other"] == pytest.approx(2 / 5, abs=0.01)
    # adcl's probes are the prior's easiest chunk: all level 0, where uniform spreads over 5 arms
    assert first["arms"][0] == "L0" and rep["per_step"][1]["arms_other"][0] == 1.0 and m["arm_tv"] > 0.5


def test_a_logged_adcl_run_replays_identically_and_differs_from_schedule():
    cfg, records = simulate_log("adcl", ADCL, steps=8, seed=2)
    assert whatif(cfg, records, "adcl", ADCL)["summary"]["identical"]
    assert not whatif(cfg, records, "schedule")["summary"]["identical"]


def test_cli_prints_the_caveat_and_a_table_and_writes_json(tmp_path):
    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["simlog", str(run), "--steps", "6", "--seed", "3"])
    assert res.exit_code == 0, res.output
    cfg, records = read_log(run)
    assert cfg.strategy == "uniform" and records[0]["op"] == "add_items" and len(records) == 1 + 2 * 6
    res = CliRunner().invoke(app, ["whatif", str(run), "--strategy", "adcl", "--params", json.dumps(ADCL)],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "off-policy" in res.output and "item overlap" in res.output
    rep = json.loads((run / "whatif-adcl.json").read_text())
    assert rep["caveat"] == CAVEAT and rep["steps"] == len(rep["per_step"]) >= 5
    bad = CliRunner().invoke(app, ["whatif", str(run), "--strategy", "adcl", "--params", '{"g_est": 0}'])
    assert bad.exit_code == 2 and "g_est" in bad.output


def test_write_then_read_round_trips(tmp_path, log):
    cfg, records = log
    write_log(tmp_path / "r", cfg, records)
    cfg2, rec2 = read_log(tmp_path / "r" / "records.jsonl")
    assert cfg2 == cfg and rec2 == json.loads(json.dumps(records))


def test_export_log_writes_a_served_experiments_log_that_replays_identically(redis_url, tmp_path, log):
    from services.store import ExperimentStore

    cfg, records = log
    store = ExperimentStore(redis_url)
    assert store.create(cfg.model_dump(mode="json"), records[0]["items"])  # the owner logs add_items first
    for rec in records[1:]:
        store.append(cfg.name, rec)
    res = CliRunner().invoke(app, ["export-log", cfg.name, str(tmp_path / "r"), "--redis-url", redis_url])
    assert res.exit_code == 0, res.output
    cfg2, rec2 = read_log(tmp_path / "r")
    assert cfg2 == cfg and len(rec2) == len(records)
    assert whatif(cfg2, rec2, "uniform")["summary"]["identical"]
    last = list(store.records(cfg.name))[5][0]
    store.save_snapshot(cfg.name, b"x", last)  # as an owner does: the log before it is trimmed
    res = CliRunner().invoke(app, ["export-log", cfg.name, str(tmp_path / "t"), "--redis-url", redis_url])
    assert res.exit_code != 0 and "trimmed" in res.output
