"""The shipped warm start: a fresh clone's main job finds its default warm start in deploy/warm_starts, adopts it
only when every file matches its recorded sum, and the weights are the ones the map was measured on."""
from __future__ import annotations

import json

from deploy.config import RunConfig, eval_items
from deploy.pipeline import warm_keys
from deploy.warm_cache import SHIPPED, adopt, ship


def test_ship_and_adopt_round_trip_and_a_tampered_file_is_refused(tmp_path):
    cache = tmp_path / "cache" / "abc123"
    cache.mkdir(parents=True)
    (cache / "model.safetensors").write_bytes(b"\x00weights")
    (cache / "pass_rates-k.json").write_text('{"pass_rate": {}}')
    (cache / "pass_rates-k.job.json").write_text('{"folder": "/local/path"}')  # names local paths: not shipped
    shipped = tmp_path / "shipped"
    dest = ship(cache, shipped)
    assert sorted(p.name for p in dest.iterdir()) == ["manifest.json", "model.safetensors", "pass_rates-k.json"]
    assert adopt("abc123", tmp_path / "run" / "abc123", shipped)
    assert (tmp_path / "run" / "abc123" / "model.safetensors").read_bytes() == b"\x00weights"
    assert not adopt("other", tmp_path / "run" / "other", shipped)  # no such key: the job trains
    (dest / "model.safetensors").write_bytes(b"\x00tampered")
    assert not adopt("abc123", tmp_path / "run2" / "abc123", shipped)
    assert not (tmp_path / "run2").exists()


def test_the_main_jobs_default_warm_start_is_shipped_with_its_map(tmp_path):
    from workers.model import load_policy
    from workers.warm_start_job import map_checksum, weights_checksum

    cfg = RunConfig()
    weights_key, map_key = warm_keys(cfg, eval_items(cfg))
    assert (SHIPPED / weights_key / "manifest.json").exists(), "default changed: ship its warm start again"
    folder = tmp_path / weights_key
    assert adopt(weights_key, folder)
    warm = json.loads((folder / f"pass_rates-{map_key}.json").read_text())
    assert warm["checksum"] == map_checksum(warm["pass_rate"])
    model, _ = load_policy(folder)
    assert weights_checksum(model) == warm["weights_checksum"]  # the map describes these weights
