"""Locust's conventions, without load: picking user classes, task-less base classes, a
LoadTestShape, the scenario's own options, tag filters, settings files, and the scenario's
exceptions counted (docs/design.md#locust-conventions, #scenario-crashes)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from breakpoint.cli.main import main
from breakpoint.errors import ScenarioError, UsageError
from breakpoint.load.crashes import ScenarioCrashes
from breakpoint.load.guard import BlockedHostError
from breakpoint.load.scenario import load_scenario
from breakpoint.load.scenario_options import check_tags, parsed_options

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
PLAIN = SCENARIOS / "plain_users.py"


def _write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "locustfile.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_classes_with_tasks_are_found_and_a_taskless_base_is_skipped() -> None:
    scenario = load_scenario(PLAIN)
    assert sorted(c.__name__ for c in scenario.user_classes) == [
        "MarkovUser",
        "NotThisOne",
        "RpcUser",
        "TwoHosts",
    ]
    assert scenario.shape == "Ramp"


def test_classes_are_picked_by_name_in_the_order_given() -> None:
    scenario = load_scenario(PLAIN, ["RpcUser", "MarkovUser"])
    assert [c.__name__ for c in scenario.user_classes] == ["RpcUser", "MarkovUser"]
    assert scenario.hosts == {"http://127.0.0.1:9"} or len(scenario.hosts) == 1


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["Nope"], r"no user class named Nope \(the file defines: Base, MarkovUser, NotThisOne, "
                   r"RpcUser, TwoHosts\)"),
        (["Base"], r"user class Base has no @task"),
    ],
)  # fmt: skip
def test_a_wrong_class_name_is_refused_naming_the_file(names: list[str], message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as caught:
        load_scenario(PLAIN, names)
    assert str(caught.value).startswith(str(PLAIN))


def test_a_scenario_option_reaches_parsed_options_with_its_type() -> None:
    scenario = load_scenario(PLAIN)
    options = parsed_options(scenario, [("shop-id", "7")], host="http://h:1", tags=["a"])
    assert options.shop_id == 7 and options.host == "http://h:1" and options.tags == ["a"]
    assert parsed_options(scenario, [], host="http://h:1").shop_id == 0  # its default
    assert parsed_options(scenario, [("shop_id", "8")], host="x").shop_id == 8


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("colour", "red")], r"--scenario-opt colour: plain_users.py adds no such option "
                              r"\(its options: --shop-id\)"),
        ([("num-users", "3")], r"adds no such option"),  # Locust's own are not the scenario's
        ([("shop-id", "seven")], r"--scenario-opt: .*invalid int value: 'seven'"),
    ],
)  # fmt: skip
def test_a_bad_scenario_option_is_a_usage_error(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parsed_options(load_scenario(PLAIN), pairs, host="http://h:1")


def test_tags_that_leave_a_class_without_tasks_are_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        from locust import HttpUser, tag, task

        class Shopper(HttpUser):
            @tag("browse")
            @task
            def browse(self):
                pass

            @tag("buy")
            @task
            def buy(self):
                pass
        """,
    )
    scenario = load_scenario(path)
    check_tags(scenario, ["browse"], None)
    check_tags(scenario, None, ["buy"])
    with pytest.raises(UsageError, match="no task of Shopper"):
        check_tags(scenario, ["checkout"], None)
    with pytest.raises(UsageError, match="no task of Shopper"):
        check_tags(scenario, None, ["browse", "buy"])


def test_run_settings_come_from_breakpoint_toml_or_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keys are checked before anything runs: a mistake names the file and the key, exit 2."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.breakpoint]\nbaseline-rsp = 3\n")
    assert main(["run", str(PLAIN)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"breakpoint: error: {tmp_path / 'pyproject.toml'}: baseline-rsp: unknown setting"
    )
    # breakpoint.toml is read first; a bad value names the file, the key and the option.
    (tmp_path / "breakpoint.toml").write_text('hold-s = "long"\n')
    assert main(["run", str(PLAIN)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "breakpoint.toml: hold-s: 'long' is not a valid float" in err[0]
    # A good file: its values are used (here, a plan without a baseline is still refused).
    (tmp_path / "breakpoint.toml").write_text('baseline-users = 0\nhost = "http://127.0.0.1:9"\n')
    assert main(["run", str(PLAIN)]) == 2
    assert "--baseline-users" in capsys.readouterr().err


def test_the_host_comes_from_the_command_line_or_the_classes(tmp_path: Path) -> None:
    from breakpoint.cli.scenario_args import resolve_host

    assert resolve_host("http://a:1", {"http://b:2"}, "f.py") == "http://a:1"
    assert resolve_host(None, {"http://b:2"}, "f.py") == "http://b:2"
    with pytest.raises(UsageError, match="no user class sets `host`: give the target with --host"):
        resolve_host(None, set(), "f.py")
    with pytest.raises(UsageError, match=r"different hosts \(http://a:1, http://b:2\)"):
        resolve_host(None, {"http://a:1", "http://b:2"}, "f.py")


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_scenario_exceptions_stop_only_when_a_material_share_of_iterations() -> None:
    clock = _Clock()
    crashes = ScenarioCrashes(PLAIN, clock=clock)
    crashes.step = 0
    for _ in range(200):
        crashes.iteration()
    try:
        {}["shop"]
    except KeyError as exc:
        for _ in range(3):  # 3 of 200: 1.5 %, the scenario works
            crashes.record("Shopper", exc, exc.__traceback__, "a task")
    assert crashes.failing() is None
    crashes.record("Shopper", BlockedHostError("x"), None, "a task")  # the guard's, not counted
    assert crashes.total == 3
    clock.now += 30  # the old iterations leave the horizon; now every iteration raises
    crashes.step = 1
    try:
        {}["shop"]
    except KeyError as exc:
        for _ in range(3):
            crashes.iteration()
            crashes.record("Shopper", exc, exc.__traceback__, "a task")
    reason = crashes.failing()
    assert reason is not None
    assert "Shopper raised KeyError: 'shop' in a task (test_locustfiles.py:" in reason
    assert crashes.as_dict()["by_step"] == {"0": 3, "1": 3}


def test_a_constructor_that_raises_is_counted_and_its_user_is_inert(tmp_path: Path) -> None:
    from locust.env import Environment

    from breakpoint.load.users import IterationHooks, UserWiring, wrap_user_classes
    from breakpoint.plan.profiles import resolve_profiles

    path = _write(
        tmp_path,
        """
        from locust import User, task

        class Broken(User):
            def __init__(self, environment):
                super().__init__(environment)
                self.client = make_client()  # a name the scenario forgot to define

            @task
            def t(self):
                pass
        """,
    )
    scenario = load_scenario(path)
    crashes = ScenarioCrashes(path)
    profile = resolve_profiles(["desktop-broadband"])[0]
    wiring = UserWiring(model="closed", hooks=IterationHooks(), crashes=crashes)
    (cls,) = wrap_user_classes(scenario.user_classes, [profile], {profile.name: 1.0}, wiring)
    user: Any = cls(Environment(user_classes=[cls]))
    assert user._bp_broken and crashes.total == 1
    assert crashes.failing() is None  # one is not yet a rule
    for _ in range(2):
        cls(Environment(user_classes=[cls]))
    reason = crashes.failing()
    assert (
        reason is not None
        and "NameError" in reason
        and "its constructor (locustfile.py:7)" in reason
    )
