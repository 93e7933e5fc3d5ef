import json

import pytest
from pydantic import ValidationError

from curriculum.sources import items_from_source
from workers.verifiers import Verifier


def test_arithmetic_items_are_correct_and_deterministic():
    spec = {"kind": "arithmetic", "min_digits": 1, "max_digits": 3, "items_per_level": 40, "ops": ["+", "-", "*"],
            "seed": 3}
    items = items_from_source(spec)
    assert len(items) == 120 and [i.category for i in items[::40]] == ["d1", "d2", "d3"]
    for it in items:
        assert str(eval(it.prompt.rstrip("="))) == it.answer  # noqa: S307 (our own generated digits)
        assert it.difficulty == float(it.category[1:])
        a = it.prompt.rstrip("=").replace("*", "+").replace("-", "+").split("+")[0]
        assert len(a) == int(it.category[1:]) or (it.category == "d1")
    assert [i.model_dump() for i in items_from_source(spec)] == [i.model_dump() for i in items]
    assert len({i.id for i in items}) == 120
    assert (
        items_from_source({**spec, "seed": 4})[0].prompt != items[0].prompt
        or items_from_source({**spec, "seed": 4})[1].prompt != items[1].prompt
    )


def test_reasoning_gym_sub_levels_and_its_own_scorer():
    spec = {"kind": "reasoning_gym", "levels": [
        {"name": "prod-1x1", "dataset": "products", "config": {"min_digits": 1, "max_digits": 1}, "size": 5},
        {"name": "prod-2x2", "dataset": "products", "config": {"min_digits": 2, "max_digits": 2}, "size": 5},
        {"name": "chain", "dataset": "chain_sum", "size": 5}]}
    items = items_from_source(spec)
    assert [i.category for i in items[::5]] == ["prod-1x1", "prod-2x2", "chain"]
    assert [i.difficulty for i in items[::5]] == [0.0, 1.0, 2.0]
    v = Verifier()
    for it in items:
        d = json.loads(it.model_dump_json())  # metadata survives JSON (the controller stores it)
        assert v.score(d, f"work...\nAnswer: {it.answer}") == 1.0
        assert v.score(d, "Answer: not a number") < 1.0
    assert v.errors == 0


def test_jsonl_source_with_mapping_and_bad_line(tmp_path):
    p = tmp_path / "items.jsonl"
    p.write_text('{"qid": 1, "question": "2+2=", "label": 4, "category": "easy"}\n\n{"qid": 2, "question": "3+3="}\n')
    items = items_from_source(
        {"kind": "jsonl", "path": str(p), "fields": {"id": "qid", "prompt": "question", "answer": "label"}}
    )
    assert [(i.id, i.prompt, i.answer, i.category) for i in items] == [
        ("1", "2+2=", "4", "easy"),
        ("2", "3+3=", None, "default"),
    ]
    p.write_text('{"id": "a", "prompt": "x"}\n{"id": "b"}\n')
    with pytest.raises(ValueError) as e:
        items_from_source({"kind": "jsonl", "path": str(p)})
    assert "line 2" in str(e.value) and "prompt" in str(e.value)


@pytest.mark.parametrize("spec,field", [
    ({"kind": "arithmetic", "max_digits": 0}, "max_digits"),
    ({"kind": "arithmetic", "ops": ["/"]}, "ops"),
    ({"kind": "arithmetic", "bogus": 1}, "bogus"),
    ({"kind": "reasoning_gym", "levels": []}, "levels"),
    ({"kind": "nope"}, "kind"),
])
def test_invalid_specs_name_the_field(spec, field):
    with pytest.raises(ValidationError) as e:
        items_from_source(spec)
    assert field in str(e.value)


def test_unknown_reasoning_gym_dataset_names_the_level():
    with pytest.raises(ValueError) as e:
        items_from_source({"kind": "reasoning_gym", "levels": [{"name": "x", "dataset": "no_such_dataset"}]})
    assert "levels[0]" in str(e.value)


def test_arithmetic_noise_category_and_fresh_problems():
    import numpy as np

    from curriculum.sources import parse_source

    spec = {"kind": "arithmetic", "min_digits": 1, "max_digits": 2, "items_per_level": 10, "noise_items": 6}
    items = items_from_source(spec)
    noise = [i for i in items if i.category == "noise"]
    assert len(items) == 26 and len(noise) == 6
    assert all(
        "?" in i.prompt and i.answer is None and i.metadata == {"verifier": "coin", "noise": "coin"} for i in noise
    )
    assert all(i.difficulty is None for i in noise) and len({i.id for i in items}) == 26
    src = parse_source(spec)
    pairs = src.problems(3, 20, np.random.default_rng(1))
    assert all(len(p.split("+")[0]) == 3 and str(eval(p.rstrip("="))) == a for p, a in pairs)  # noqa: S307
    assert pairs == src.problems(3, 20, np.random.default_rng(1))


ARITH = {"kind": "arithmetic", "min_digits": 1, "max_digits": 3, "items_per_level": 200, "verifier": "exact", "seed": 5}


def _by_id(items):
    return {i.id: i for i in items}


RGF = {"kind": "rg_family", "levels": [2, 3, 4], "items_per_level": 200, "seed": 5}
FAMILIES = [(ARITH, ["d1", "d2", "d3"]), (RGF, ["t2", "t3", "t4"])]


@pytest.mark.parametrize("family,levels", FAMILIES, ids=["arithmetic", "rg_family"])
def test_noise_variants_share_the_problems_and_differ_where_they_say(family, levels):
    v = Verifier()
    clean = _by_id(items_from_source({**family, "noise": "none"}))
    assert not any("noise" in i.metadata for i in clean.values())
    for kind in ("mislabeled", "judge"):
        noisy = _by_id(items_from_source({**family, "noise": kind, "noise_fraction": 0.2}))
        assert noisy.keys() == clean.keys() and all(noisy[k].prompt == clean[k].prompt for k in clean)
        for cat in levels:  # every level carries its share of noisy items
            level = [i for i in noisy.values() if i.category == cat]
            assert sum(i.metadata.get("noise") == kind for i in level) == 40
        for k, it in noisy.items():
            right = clean[k].answer
            d = json.loads(it.model_dump_json())
            if it.metadata.get("noise") != kind:
                assert it.answer == right and v.score(d, f"Answer: {right}") == 1.0
            elif kind == "mislabeled":  # a wrong reference, off by 1-9: the right answer scores 0
                assert 1 <= abs(int(it.answer) - int(right)) <= 9
                assert v.score(d, f"Answer: {right}") == 0.0
            else:  # the lenient judge passes the right answer and a wrong one ending in the same digit
                wrong = str(int(right) + (10 if int(right) >= 0 else -10))
                assert v.score(d, f"Answer: {right}") == 1.0 and v.score(d, f"Answer: {wrong}") == 1.0
                assert v.score(d, f"Answer: {int(right) + 1}") == 0.0
                assert v.score({**d, "metadata": {"verifier": "exact"}}, f"Answer: {wrong}") == 0.0
    assert v.errors == 0


def test_rg_family_levels_are_the_knob_values_graded_exactly_and_fit_the_tiny_model():
    import numpy as np

    from curriculum.sources import parse_source
    from workers.model import CHARS

    items = items_from_source({**RGF, "noise": "coin", "noise_items": 30})
    assert items == items_from_source({**RGF, "noise": "coin", "noise_items": 30})  # deterministic
    by_cat: dict[str, list] = {}
    for it in items:
        by_cat.setdefault(it.category, []).append(it)
    assert {k: len(v) for k, v in by_cat.items()} == {"t2": 200, "t3": 200, "t4": 200, "noise": 30}
    for cat in ("t2", "t3", "t4"):
        terms = int(cat[1])
        for it in by_cat[cat]:
            expr = it.prompt.removeprefix("Calculate ").rstrip(".")
            assert len(expr.split()) == 2 * terms - 1 and str(eval(expr)) == it.answer  # noqa: S307
            assert it.difficulty == terms and it.metadata == {"verifier": "exact"}
            assert len(it.prompt) + len(it.answer) + 2 <= 128 and set(it.prompt + it.answer) <= set(CHARS)
    assert all("?" in i.prompt and i.metadata["verifier"] == "coin" for i in by_cat["noise"])
    v = Verifier()  # exact: the dataset's substring partial credit does not apply ("12" is not "2")
    it = json.loads(next(i for i in by_cat["t2"] if len(i.answer) == 1 and i.answer != "1").model_dump_json())
    assert v.score(it, it["answer"]) == 1.0 and v.score(it, "1" + it["answer"]) == 0.0
    src = parse_source(RGF)  # fresh draws for the warm start: same level, same seed -> same problems
    assert src.problems(3, 5, np.random.default_rng(1)) == src.problems(3, 5, np.random.default_rng(1))
    with pytest.raises(ValidationError, match="ascending"):
        items_from_source({**RGF, "levels": [3, 2]})


def test_arithmetic_coin_noise_and_its_legacy_spelling():
    coin = items_from_source({**ARITH, "noise": "coin", "noise_items": 50})
    legacy = items_from_source({**ARITH, "noise_items": 50})
    assert [i.model_dump() for i in coin] == [i.model_dump() for i in legacy]
    assert sum(i.category == "noise" for i in coin) == 50
    with pytest.raises(ValidationError, match="noise_items"):
        items_from_source({**ARITH, "noise": "coin"})
    with pytest.raises(ValidationError, match="noise_items"):
        items_from_source({**ARITH, "noise": "judge", "noise_items": 5})
    with pytest.raises(ValidationError):
        items_from_source({**ARITH, "noise": "loud"})


def test_warm_start_draws_rg_family_levels_by_their_knob_value():
    from curriculum.sources import parse_source
    from workers.model import TinyModelConfig, build_tiny_model
    from workers.warm_start import WarmStartConfig, warm_start

    model, tok = build_tiny_model(TinyModelConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                  num_attention_heads=2))
    cfg = WarmStartConfig(steps=2, batch=4, warmup_steps=1, mix={"t2": 1.0, "t4": 1.0})
    losses = warm_start(model, tok, parse_source(RGF), cfg)  # "t4" is the level of 4 terms
    assert len(losses) == 2 and all(x > 0 for x in losses)
