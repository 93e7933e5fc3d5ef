import pytest

from workers import verifiers
from workers.verifiers import Verifier, extract_answer


def test_answer_extraction():
    assert extract_answer("I think...\nAnswer: 42\n") == "42"
    assert extract_answer("answer: 1\nAnswer: 2") == "2"
    assert extract_answer("17\nmore text") == "17"
    assert extract_answer("") == ""


def test_exact_and_math():
    v = Verifier()
    assert v.score({"answer": "19"}, "19") == 1.0 and v.score({"answer": "19"}, "91") == 0.0
    assert v.score({"answer": "1,000"}, "Answer: 1000.") == 1.0
    m = {"answer": "1/2", "metadata": {"verifier": "math"}}
    for good in ("Answer: 0.5", "\\frac{1}{2}", "Answer: 1/2"):
        assert v.score(m, good) == 1.0, good
    assert v.score(m, "Answer: 0.4") == 0.0
    assert v.errors == 0


def test_plugin_and_throwing_verifier_is_counted_not_raised():
    verifiers.register("always_half", lambda item, text: 0.5)
    v = Verifier()
    assert v.score({"metadata": {"verifier": "always_half"}}, "x") == 0.5
    assert v.score({"answer": "4", "metadata": {"verifier": "tests.workers.test_verifiers:_boom"}}, "4") == 0.0
    assert v.score({"metadata": {"verifier": "no_such"}}, "x") == 0.0
    assert v.score({"metadata": {"verifier": "tests.workers.test_verifiers:_out_of_range"}}, "x") == 0.0
    assert v.errors == 3 and "out" in v.last_error or "outside" in v.last_error


def _boom(item, text):
    raise RuntimeError("verifier bug")


def _out_of_range(item, text):
    return 3.0


def test_length_shaped_reward_grades_length_against_the_budget():
    from workers.verifiers import length_shaped

    assert length_shaped(1.0, 100, 256) == 1.0  # correct and within budget
    assert length_shaped(1.0, 320, 256) == pytest.approx(0.5 + 0.5 * (1 - 64 / 256))  # 25% over: 0.875
    assert length_shaped(1.0, 600, 256) == pytest.approx(0.5)  # over 2B: correctness share only
    assert length_shaped(0.0, 10, 256) == 0.0  # a short wrong answer earns nothing
    assert length_shaped(1.0, 512, 256, weight=0.2) == pytest.approx(0.8)
    assert length_shaped(0.7, 999, None) == 0.7  # no budget: unchanged


def test_token_budget_defaults_follow_the_paper():
    from curriculum import TokenBudget

    b = TokenBudget()
    assert (b.b0, b.gamma) == (256, 0.7) and b.at(0) == 256 and b.at(100) == 179 and b.at(10**6) == 1
