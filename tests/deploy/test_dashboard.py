"""The Grafana dashboard shipped with the chart: a ConfigMap the kube-prometheus-stack sidecar picks up, whose
JSON loads and whose every query names metrics the controller really exports (read from its registry)."""
import json
import re

from tests.deploy.conftest import CHART

METRIC = re.compile(r"\bcurriculum_[a-z_]+\b")


def exported() -> set[str]:
    """Every sample name services.app's registry can expose, from the metric families themselves."""
    from services.metrics import REGISTRY

    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "gauge": ("",), "summary": ("_sum", "_count", "_created")}
    return {fam.name + s for fam in REGISTRY.collect() for s in suffixes[fam.type]}


def dashboard_map(objs):
    maps = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]
    return maps[0] if maps else None


def queries(dash: dict) -> list[str]:
    out = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    out += [v["definition"] for v in dash["templating"]["list"] if v.get("type") == "query"]
    return out


def test_the_dashboard_configmap_is_labelled_for_the_grafana_sidecar(render):
    cm = dashboard_map(render())
    assert cm is not None and cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "ml"
    dash = json.loads(cm["data"]["curriculum.json"])
    assert dash["uid"] == "curriculum-service" and len(dash["panels"]) >= 6
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for what in ("arm weights", "pass rate", "events / s", "degenerate", "duplicates", "latency"):
        assert what in titles
    other = dashboard_map(render({"grafanaDashboard": {"labels": {"dash": "yes"}, "namespace": "monitoring"}}))
    assert other["metadata"]["labels"]["dash"] == "yes" and other["metadata"]["namespace"] == "monitoring"
    assert dashboard_map(render({"grafanaDashboard": {"enabled": False}})) is None


def test_every_query_names_a_metric_the_service_exports():
    names = exported()
    assert {"curriculum_arm_weight", "curriculum_events_applied_total", "curriculum_request_seconds_bucket"} <= names
    dash = json.loads((CHART / "dashboards" / "curriculum.json").read_text())
    qs = queries(dash)
    assert qs and all(METRIC.search(q) for q in qs)  # every panel query reads one of ours
    used = {m for q in qs for m in METRIC.findall(q)}
    assert used <= names, f"not exported by services.app: {sorted(used - names)}"
    # and the check has teeth: a renamed metric would be caught
    assert "curriculum_arm_weights" not in names


def test_the_exported_list_comes_from_the_live_registry():
    from prometheus_client import Gauge

    from services.metrics import REGISTRY

    g = Gauge("curriculum_probe_metric", "probe", registry=REGISTRY)
    try:
        assert "curriculum_probe_metric" in exported()
    finally:
        REGISTRY.unregister(g)
    assert "curriculum_probe_metric" not in exported()
