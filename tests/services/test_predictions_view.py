"""Calibration, screening overhead and cost in tokens, as `/state` and `/metrics` show them (issue 17)."""
ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": "d0", "answer": str(i + 1)} for i in range(20)]


def test_state_and_metrics_show_calibration_screening_and_token_cost(api):
    api.create_experiment("p1", "screen", params={"inner": {"name": "uniform"}, "screen_samples": 2}, items=ITEMS,
                          group_size=4)
    b = api.lease("p1", 6)
    assert [it["num_samples"] for it in b["items"]] == [2] * 6  # screens first
    mixed = {b["items"][0]["id"], b["items"][1]["id"]}
    api.report("p1", [{"item_id": it["id"], "rewards": [1, 0] if it["id"] in mixed else [1, 1],
                       "policy_version": 0, "signals": {"tokens": 10}} for it in b["items"]])
    b2 = api.lease("p1", 2)
    assert {it["id"] for it in b2["items"]} == mixed and [it["num_samples"] for it in b2["items"]] == [4, 4]
    api.report("p1", [{"item_id": it["id"], "rewards": [1, 0, 1, 1], "policy_version": 1,
                       "signals": {"tokens": 30}} for it in b2["items"]])
    d = api.state("p1")["details"]
    assert d["screening"]["screens"] == 6 and d["screening"]["screen_rollouts"] == 12
    assert d["screening"]["qualified"] == 2 and d["screening"]["fulls"] == 2
    assert d["calibration"]["resolved"] == 8 and d["calibration"]["history"]["version"] == [0, 1]
    cost = d["cost"]
    assert (cost["rollouts"], cost["tokens"], cost["waste_tokens"], cost["informative_groups"]) == (20, 120, 40, 4)
    assert cost["tokens_per_informative_group"] == 30.0
    m = api.http.get("/metrics").text
    assert 'curriculum_cost{experiment="p1",quantity="tokens"} 120.0' in m
    assert 'curriculum_cost{experiment="p1",quantity="waste_tokens"} 40.0' in m
    assert 'curriculum_prediction{experiment="p1",quantity="screen_rollouts"} 12.0' in m
    assert 'curriculum_prediction{experiment="p1",quantity="calibration_resolved"} 8.0' in m
    assert f'curriculum_prediction{{experiment="p1",quantity="calibration_brier"}} {d["calibration"]["brier"]}' in m
