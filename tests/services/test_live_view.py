"""`curriculum state NAME --watch`: a live table over the real service, with events/s between refreshes."""
import os
import signal
import subprocess
import sys
import threading
import time

from rich.console import Console

from deploy.cmd_service import state_view

ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 3}", "answer": str(i + 1)} for i in range(30)]


def render(group) -> str:
    c = Console(width=160, record=True, file=open(os.devnull, "w"))
    c.print(group)
    return c.export_text()


def test_the_view_shows_weights_pass_rates_shares_and_rate(api):
    api.create_experiment("w1", "sec", items=ITEMS, group_size=4)
    b = api.lease("w1", 6)
    api.report("w1", [{"item_id": it["id"], "rewards": [1, 1, 1, 1] if k % 2 else [1, 0, 0, 1]}
                      for k, it in enumerate(b["items"])])
    s = api.state("w1")
    text = render(state_view("w1", s, 12.5))
    assert "degenerate 50.0%" in text and "12.5 events/s" in text and "on noise-judged arms 0.0%" in text
    for a in s["arms"]:
        assert a["name"] in text and f"{a['weight']:.3f}" in text
    # an arm the noise guard judges noise is flagged and its weight counted in the header
    s["details"]["noise_arms"] = [s["arms"][0]["name"]]
    text = render(state_view("w1", s))
    assert f"on noise-judged arms {s['arms'][0]['weight']:.1%}" in text and " yes" in text and "events/s" not in text
    # the same numbers for Prometheus (the chart's Grafana dashboard plots them)
    m = api.http.get("/metrics").text
    assert 'curriculum_degenerate_ratio{experiment="w1"} 0.5' in m
    for a in s["arms"]:
        if a["pass_rate"] is not None:
            assert f'curriculum_arm_pass_rate{{arm="{a["name"]}",experiment="w1"}} {a["pass_rate"]}' in m


def test_watch_refreshes_until_interrupted(stack, api):
    api.create_experiment("w2", "uniform", items=ITEMS, group_size=2)
    stop = threading.Event()

    def feed():  # a trainer reporting while the view watches
        k = 0
        while not stop.is_set():
            b = api.lease("w2", 3)
            api.report("w2", [{"item_id": it["id"], "rewards": [1, 0], "rollout_id": f"{k}-{it['id']}"}
                              for it in b["items"]])
            k += 1
            time.sleep(0.1)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    # started with SIGINT ignored, as a background job's children are: the view must still stop on Ctrl-C
    p = subprocess.Popen([sys.executable, "-m", "deploy.cli", "state", "w2", "--url", stack.url, "--watch",
                          "--interval", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env={**os.environ, "COLUMNS": "160"},
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    time.sleep(15)  # past the CLI's imports even on a loaded 2-core machine, then Ctrl-C
    for _ in range(6):  # a Ctrl-C that lands inside a blocking C call can be lost: press it again
        p.send_signal(signal.SIGINT)
        try:
            out, _ = p.communicate(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        p.kill()
        out, _ = p.communicate()
    stop.set()
    t.join(5)
    assert p.returncode == 0, out
    assert "events/s" in out and "d0" in out and "w2" in out
    rates = [float(line.split(" events/s")[0].split()[-1]) for line in out.splitlines() if " events/s" in line]
    assert rates and max(rates) > 0  # the feed's events showed up between refreshes
