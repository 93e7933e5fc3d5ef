"""The Helm chart, rendered offline: lint, Kubernetes schemas, KubeRay CRD schemas, and what the values promise."""
from __future__ import annotations

import base64
import copy
import importlib
import json
import re

import pytest
import yaml

from tests.deploy.conftest import CHART, FULLNAME, REPO, example, one, ray_pod_specs, shared_dir

KUBE_VERSION = "1.32.0"  # bundled by kubernetes-validate; the chart's kubeVersion floor is 1.25
GPU = {"ray": {"workers": {"rolloutGpu": {"maxReplicas": 4, "gpus": 1}}}}
CASES = {
    "default": {},
    "rollout-gpus": GPU,
    "gpu-example": example("gpu"),
    "external-redis": example("external-redis"),
    "extra-group": example("extra-group"),
    "existing-secret": {"secret": {"existingSecret": "my-curriculum-secrets"}},
    "ingress": {"ingress": {"enabled": True, "className": "nginx",
                            "tls": [{"secretName": "cur-tls", "hosts": ["curriculum.example.com"]}]}},
    "tuned": {"ray": {"upgradeStrategy": "None", "head": {"nodeSelector": {"pool": "system"}}},
              "controller": {"replicas": 2, "extraEnv": {"HF_HUB_OFFLINE": 1}},
              "extraEnv": [{"name": "HF_HOME", "value": "/tmp/hf"}], "imagePullSecrets": [{"name": "regcred"}],
              "redis": {"persistence": {"storageClass": "fast-ssd", "size": "20Gi"}}},
}


def rayservice(docs: list[dict]) -> dict:
    return one(docs, "RayService")


def groups(docs: list[dict]) -> list[dict]:
    return rayservice(docs)["spec"]["rayClusterConfig"]["workerGroupSpecs"]


def group(docs: list[dict], name: str) -> dict:
    return next(g for g in groups(docs) if g["groupName"] == name)


# -- lint and schemas ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_lint_is_clean(case):
    import helm_python as helm

    report = helm.lint(CHART, CASES[case], strict=True, namespace="ml", kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 1 = info ("icon is recommended")
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("case", CASES)
def test_builtin_kinds_match_the_kubernetes_schemas(render, case):
    import kubernetes_validate

    docs = [d for d in render(CASES[case]) if not d["apiVersion"].startswith("ray.io/")]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)  # strict: unknown fields are errors


def _crd_schema(name: str) -> dict:
    path = shared_dir() / "schemas" / "kuberay" / name
    if not path.exists():
        pytest.skip(f"no KubeRay CRD at {path} (set CURRICULUM_SHARED)")
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return _closed(version["schema"]["openAPIV3Schema"])


def _closed(schema):
    """The API server prunes fields a structural schema does not declare, so a misspelt or misplaced field
    would vanish silently on apply. Close every declared object so that such a field fails here instead."""
    if isinstance(schema, dict):
        schema = {k: _closed(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def crd_validators():
    jsonschema = pytest.importorskip("jsonschema")
    service = _crd_schema("ray.io_rayservices.yaml")
    cluster_spec = _crd_schema("ray.io_rayclusters.yaml")["properties"]["spec"]
    return jsonschema.Draft7Validator(service), jsonschema.Draft7Validator(cluster_spec)


@pytest.mark.parametrize("case", CASES)
def test_rayservice_matches_the_kuberay_crds(render, crd_validators, case):
    service_v, cluster_v = crd_validators
    rs = rayservice(render(CASES[case]))
    assert rs["apiVersion"] == "ray.io/v1"
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in service_v.iter_errors(rs)]
    # The RayCluster KubeRay creates from it must be valid too.
    errors += [f"rayClusterConfig/{'/'.join(map(str, e.absolute_path))}: {e.message}"
               for e in cluster_v.iter_errors(rs["spec"]["rayClusterConfig"])]
    assert not errors, "\n".join(errors)


def test_the_crd_check_has_teeth(render, crd_validators):
    """A misplaced field (the API server would drop it silently) and a wrong type both fail."""
    service_v, cluster_v = crd_validators
    rs = rayservice(render())
    misplaced = copy.deepcopy(rs)
    misplaced["spec"]["rayClusterConfig"]["idleTimeoutSeconds"] = 60
    wrong_type = copy.deepcopy(rs)
    wrong_type["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = "4"
    for doc in (misplaced, wrong_type):
        assert list(service_v.iter_errors(doc)) and list(cluster_v.iter_errors(doc["spec"]["rayClusterConfig"]))


def test_values_schema_rejects_wrong_types(chart):
    import helm_python as helm

    chart.validate_schema({})
    for case in CASES.values():
        chart.validate_schema(case)
    bad = [{"ray": {"workers": {"rolloutGpu": {"maxReplicas": "x"}}}},
           {"ray": {"workers": {"cpu": {"gpus": -1}}}},
           {"extraWorkerGroups": [{"name": "Not_A_Label", "maxReplicas": 1}]},
           {"extraWorkerGroups": [{"maxReplicas": 1}]},
           {"secret": {"redisPassword": "p@ss:word"}},
           {"redis": {"external": {"url": "localhost:6379"}}},
           {"ray": {"autoscaler": {"idleTimeoutSeconds": "soon"}}},
           {"ray": {"workerz": {}}}]
    for values in bad:
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(values)
    # An install runs the same check before rendering anything.
    with pytest.raises(helm.HelmError):
        chart.render(values=bad[0], name="cur", namespace="ml")


def test_values_schema_agrees_with_jsonschema(chart):
    """values.schema.json is plain JSON Schema: the merged defaults pass it, a string replica count does not."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    v = jsonschema.Draft7Validator(schema)
    assert not list(v.iter_errors(chart.merge_values(GPU)))
    bad = chart.merge_values({})
    bad["ray"]["workers"]["rolloutGpu"]["maxReplicas"] = "x"
    assert [e.message for e in v.iter_errors(bad)] == ["'x' is not of type 'integer'"]


# -- the Ray cluster -------------------------------------------------------------------------------------
def test_head_takes_no_work_and_autoscaling_is_on(render):
    rc = rayservice(render({"ray": {"autoscaler": {"idleTimeoutSeconds": 120},
                                    "head": {"rayStartParams": {"num-cpus": 8}}}}))["spec"]["rayClusterConfig"]
    assert rc["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # not overridable: design section 7
    assert rc["enableInTreeAutoscaling"] is True
    assert rc["autoscalerOptions"]["idleTimeoutSeconds"] == 120


def test_worker_groups_are_an_ordered_list(render):
    assert [g["groupName"] for g in groups(render())] == ["cpu", "rollout-gpu", "trainer-gpu"]


def _kuberay_view(rayservice_doc: dict, n_groups: int | None = None) -> dict:
    """What KubeRay compares to decide between 'update in place' and 'roll out a new RayCluster': the cluster
    spec without replicas/minReplicas/maxReplicas (its hash mutes those), cut to the first n_groups groups
    (a RayService whose old groups are unchanged and whose new groups come last is updated in place)."""
    rc = copy.deepcopy(rayservice_doc["spec"]["rayClusterConfig"])
    rc["workerGroupSpecs"] = rc["workerGroupSpecs"][:n_groups]
    for g in rc["workerGroupSpecs"]:
        for k in ("replicas", "minReplicas", "maxReplicas"):
            g.pop(k, None)
    return rc


def test_appending_a_group_keeps_the_existing_ones(render):
    before = rayservice(render())
    after = rayservice(render(example("extra-group")))
    names = [g["groupName"] for g in after["spec"]["rayClusterConfig"]["workerGroupSpecs"]]
    assert names == ["cpu", "rollout-gpu", "trainer-gpu", "rollout-h100"]
    # Old groups byte-for-byte the same (KubeRay: in-place update) ...
    n = len(before["spec"]["rayClusterConfig"]["workerGroupSpecs"])
    assert _kuberay_view(after, n) == _kuberay_view(before)
    # ... and a second append keeps the first appended group where it was.
    two = example("extra-group")
    two["extraWorkerGroups"].append({"name": "eval-cpu", "maxReplicas": 3})
    names2 = [g["groupName"] for g in groups(render(two))]
    assert names2 == names + ["eval-cpu"]


def test_raising_max_replicas_is_not_a_cluster_change(render):
    assert _kuberay_view(rayservice(render(GPU))) == _kuberay_view(rayservice(render()))
    # whereas a different GPU count per pod is (documented: it rolls out a new cluster)
    more = {"ray": {"workers": {"rolloutGpu": {"maxReplicas": 4, "gpus": 2}}}}
    assert _kuberay_view(rayservice(render(more))) != _kuberay_view(rayservice(render()))


def test_gpu_limits_and_replicas_come_from_values(render):
    docs = render({"ray": {"workers": {"rolloutGpu": {"minReplicas": 1, "maxReplicas": 4, "gpus": 1,
                                                      "nodeSelector": {"gpu": "a100"}},
                                       "trainerGpu": {"maxReplicas": 2, "gpus": 8}}}})
    rollout, trainer, cpu = group(docs, "rollout-gpu"), group(docs, "trainer-gpu"), group(docs, "cpu")
    assert (rollout["minReplicas"], rollout["maxReplicas"], rollout["replicas"]) == (1, 4, 1)
    assert (trainer["minReplicas"], trainer["maxReplicas"]) == (0, 2)
    limits = lambda g: g["template"]["spec"]["containers"][0]["resources"]["limits"]  # noqa: E731
    assert limits(rollout)["nvidia.com/gpu"] == 1 and limits(trainer)["nvidia.com/gpu"] == 8
    assert "nvidia.com/gpu" not in limits(cpu)
    assert rollout["template"]["spec"]["nodeSelector"] == {"gpu": "a100"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in \
        rollout["template"]["spec"]["tolerations"]


@pytest.mark.parametrize("values, message", [
    ({"ray": {"workers": {"cpu": {"minReplicas": 5, "maxReplicas": 2}}}}, "minReplicas"),
    ({"extraWorkerGroups": [{"name": "cpu", "maxReplicas": 1}]}, "taken"),
    ({"extraWorkerGroups": [{"name": "a", "maxReplicas": 1}, {"name": "a", "maxReplicas": 2}]}, "taken"),
])
def test_inconsistent_groups_fail_the_render(chart, values, message):
    import helm_python as helm

    with pytest.raises(helm.HelmError, match=message):
        chart.render(values=values, name="cur", namespace="ml")


# -- secrets and Redis -----------------------------------------------------------------------------------
def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


@pytest.mark.parametrize("secret_values, secret_name", [({}, FULLNAME),
                                                        ({"existingSecret": "mine"}, "mine")])
def test_secrets_reach_every_ray_container(render, secret_values, secret_name):
    docs = render({"secret": secret_values, **example("extra-group")})
    redis_svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == f"{FULLNAME}-redis")
    for pod in ray_pod_specs(rayservice(docs)):
        (container,) = pod["containers"]
        names = [e["name"] for e in container["env"]]
        env = _env(container)
        # $(REDIS_PASSWORD) is expanded only from variables defined earlier in the list
        assert names.index("REDIS_PASSWORD") < names.index("CURRICULUM_REDIS_URL")
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": "redis-password"}
        assert env["CURRICULUM_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": "api-token"}
        for var, key in (("CURRICULUM_WORKER_TOKENS", "worker-tokens"), ("CURRICULUM_READ_TOKENS", "read-tokens")):
            # optional: an existingSecret made before scoped tokens existed still starts the pods
            assert env[var]["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": key, "optional": True}
        assert env["CURRICULUM_REDIS_URL"]["value"] == \
            f"redis://:$(REDIS_PASSWORD)@{redis_svc['metadata']['name']}:6379/0"
    redis_env = _env(one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0])
    assert redis_env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == secret_name
    secrets = [d for d in docs if d["kind"] == "Secret"]
    assert len(secrets) == (0 if secret_values else 1)  # existingSecret: the chart renders none


@pytest.mark.parametrize("on", [False, True])
def test_haproxy_ingress_switch_reaches_every_ray_container(render, on):
    docs = render({"ray": {"haproxyIngress": on}, **example("extra-group")})
    for pod in ray_pod_specs(rayservice(docs)):
        env = _env(pod["containers"][0])
        assert (env.get("RAY_SERVE_ENABLE_HA_PROXY", {}).get("value") == "1") is on


def test_secret_values(render):
    data = one(render({"secret": {"apiToken": "tok-123", "redisPassword": "pw-456"}}), "Secret")["data"]
    assert base64.b64decode(data["api-token"]).decode() == "tok-123"
    assert base64.b64decode(data["redis-password"]).decode() == "pw-456"
    generated = one(render(), "Secret")["data"]
    assert len(base64.b64decode(generated["api-token"])) == 32  # generated when not given
    assert base64.b64decode(generated["worker-tokens"]) == b"" == base64.b64decode(generated["read-tokens"])
    scoped = one(render({"secret": {"workerTokens": ["w1", "w2"], "readTokens": ["r1"]}}), "Secret")["data"]
    assert base64.b64decode(scoped["worker-tokens"]).decode() == "w1,w2"
    assert base64.b64decode(scoped["read-tokens"]).decode() == "r1"


def test_secret_tokens_reach_the_apps_settings(render, monkeypatch):
    """What the Secret holds, read back the way a replica reads its env, gives each token its scope."""
    from services.settings import Settings

    data = one(render({"secret": {"apiToken": "adm", "workerTokens": ["w1", "w2"], "readTokens": ["r1"]}}),
               "Secret")["data"]
    monkeypatch.setenv("CURRICULUM_REDIS_URL", "redis://x:6379/0")
    for var, key in (("CURRICULUM_API_TOKEN", "api-token"), ("CURRICULUM_WORKER_TOKENS", "worker-tokens"),
                     ("CURRICULUM_READ_TOKENS", "read-tokens")):
        monkeypatch.setenv(var, base64.b64decode(data[key]).decode())
    s = Settings.from_env()
    assert s.token == "adm" and s.scoped_tokens == {"w1": "worker", "w2": "worker", "r1": "read"}


@pytest.mark.parametrize("tokens", [["has,comma"], ["sp ace"], [""], "w1"])
def test_values_schema_rejects_bad_scoped_tokens(chart, tokens):
    with pytest.raises(Exception, match="."):
        chart.render(values={"secret": {"workerTokens": tokens}}, name="cur", namespace="ml")


def test_redis_keeps_state_with_aof_on_a_volume(render):
    docs = render()
    sts = one(docs, "StatefulSet")
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert args[args.index("--dir") + 1] == "/data"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in mounts
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert services[sts["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"


def test_external_redis_renders_no_statefulset(render):
    values = example("external-redis")
    docs = render(values)
    assert not [d for d in docs if d["kind"] in ("StatefulSet", "PersistentVolumeClaim")]
    assert not [d for d in docs if d["kind"] == "Service" and "redis" in d["metadata"]["name"]]
    for pod in ray_pod_specs(rayservice(docs)):
        assert _env(pod["containers"][0])["CURRICULUM_REDIS_URL"]["value"] == values["redis"]["external"]["url"]


# -- the controller application --------------------------------------------------------------------------
def _serve_apps(config: dict) -> list[dict]:
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(config) if hasattr(ServeDeploySchema, "model_validate") \
        else ServeDeploySchema.parse_obj(config)
    return config["applications"]


def test_serve_config_v2_imports_the_real_application(render):
    from ray.serve import Application

    config = yaml.safe_load(rayservice(render({"controller": {"replicas": 2}}))["spec"]["serveConfigV2"])
    (app,) = _serve_apps(config)
    assert app["route_prefix"] == "/"
    module, attr = app["import_path"].split(":")
    assert isinstance(getattr(importlib.import_module(module), attr), Application)
    env = app["runtime_env"]["env_vars"]
    assert env["CURRICULUM_REPLICAS"] == "2" and all(isinstance(v, str) for v in env.values())
    # secrets never sit in the RayService spec: they come from the containers' env
    assert not {"CURRICULUM_REDIS_URL", "CURRICULUM_API_TOKEN"} & set(env)


def test_serve_config_file_matches_the_chart(render):
    import services.app

    (chart_app,) = yaml.safe_load(rayservice(render())["spec"]["serveConfigV2"])["applications"]
    (file_app,) = _serve_apps(yaml.safe_load((REPO / "deploy" / "serve_config.yaml").read_text()))
    for key in ("name", "import_path", "route_prefix"):
        assert file_app[key] == chart_app[key]
    documented = set(re.findall(r"CURRICULUM_[A-Z_]+", services.app.__doc__))
    assert set(file_app["runtime_env"]["env_vars"]) <= documented
    assert set(chart_app["runtime_env"]["env_vars"]) <= documented


# -- the REST API's entry points ---------------------------------------------------------------------------
def test_ingress_points_at_kuberays_serve_service(render):
    ing = one(render(CASES["ingress"]), "Ingress")
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{FULLNAME}-serve-svc", "port": {"number": 8000}}
    assert not [d for d in render() if d["kind"] == "Ingress"]


def test_ingress_tls(render, chart):
    ing = one(render(CASES["ingress"]), "Ingress")
    assert ing["spec"]["tls"] == [{"secretName": "cur-tls", "hosts": ["curriculum.example.com"]}]
    assert "tls" not in one(render({"ingress": {"enabled": True}}), "Ingress")["spec"]  # plain HTTP unless asked
    with pytest.raises(
        Exception, match="."
    ):  # a TLS entry without its Secret is refused at install, not at the controller
        chart.render(values={"ingress": {"enabled": True, "tls": [{"hosts": ["a.example.com"]}]}},
                     name="cur", namespace="ml")


def test_notes_tell_how_to_reach_the_api(chart):
    notes = chart.render(values={}, name="cur", namespace="ml")["curriculum/templates/NOTES.txt"]
    for needle in (f"port-forward -n ml svc/{FULLNAME}-serve-svc 8000:8000", "/healthz",
                   "Authorization: Bearer", "/v1/experiments", "curriculum experiments --url"):
        assert needle in notes
