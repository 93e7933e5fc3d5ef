"""What the adapters share, without TRL or verl installed: version gates and rollout ids."""
import pytest

from workers.adapters import check_version, rollout_id


def test_versions_outside_the_verified_range_fail_loudly():
    with pytest.raises(RuntimeError, match=r"trl 0\.19\.1 is not supported.*0\.20 up to .*2\.0.*trl==1\.16\.0"):
        check_version("trl", "0.19.1", (0, 20), (2, 0), "1.16.0")
    with pytest.raises(RuntimeError, match="trl 2.0.0"):
        check_version("trl", "2.0.0", (0, 20), (2, 0), "1.16.0")
    with pytest.raises(RuntimeError, match="verl 0.10.0"):
        check_version("verl", "0.10.0", (0, 9), (0, 10), "0.9.1")
    with pytest.raises(RuntimeError):
        check_version("verl", "garbage", (0, 9), (0, 10), "0.9.1")


def test_versions_inside_the_range_warn_unless_tested(recwarn):
    check_version("trl", "1.16.0", (0, 20), (2, 0), "1.16.0")
    assert not recwarn.list
    with pytest.warns(UserWarning, match="tested on 1.16.0"):
        check_version("trl", "1.8.0", (0, 20), (2, 0), "1.16.0")


def test_rollout_ids_name_experiment_batch_and_item():
    assert rollout_id("arith", "b-000007", "q1") == "arith/b-000007/q1"
    assert rollout_id("arith", "b-000007", "q1") != rollout_id("arith", "b-000008", "q1")
