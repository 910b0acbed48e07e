"""Tests for `breakpoint check` (required breaking points as a CI gate) and the CI outputs of
`check` and `compare`: JUnit XML validated against the Jenkins junit-10.xsd CI systems read, and
the Markdown step summary written only when $GITHUB_STEP_SUMMARY is set. Runs are written to disk
with known breaks (tests/test_comparing.py's builders); no load is sent."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_comparing import DESKTOP, LOWEND, run_cli, write_release, write_run

from breakpoint.analysis.release_input import LogBreak
from breakpoint.analysis.requirements import check_segment
from breakpoint.runs.store import write_json

XSD = Path(__file__).with_name("junit-10.xsd")
XS = "{http://www.w3.org/2001/XMLSchema}"


def bracketed(multiplier: float, half_width: float = 0.05) -> LogBreak:
    y = math.log(multiplier)
    return LogBreak(
        y, math.log(multiplier * (1 - half_width)), math.log(multiplier * (1 + half_width)),
        False, "bracketed",
    )  # fmt: skip


# -- the decision --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("breaks", "required", "verdict"),
    [
        pytest.param([8.0], 5.0, "pass", id="one-run-well-above"),
        pytest.param([8.0], 7.6, "pass", id="low-end-exactly-at-requirement"),
        pytest.param([4.0], 5.0, "fail", id="one-run-below"),
        pytest.param([5.1], 5.0, "inconclusive", id="interval-straddles"),
        pytest.param([7.8, 8.0, 8.2], 6.0, "pass", id="three-runs-above"),
        pytest.param([4.0, 4.1, 3.9], 5.0, "fail", id="three-runs-below"),
        pytest.param([4.6, 5.5, 5.0], 5.0, "inconclusive", id="three-runs-around"),
    ],
)
def test_requirement_verdicts(breaks: list[float], required: float, verdict: str) -> None:
    """Pass needs the interval's low end at or above the requirement, fail its high end below."""
    result = check_segment(LOWEND, required, [bracketed(b) for b in breaks])
    assert result.verdict == verdict, result.message
    assert result.runs == len(breaks)
    if verdict == "pass":
        assert result.low is not None and result.low >= required * (1 - 1e-9)
    if verdict == "fail":
        assert result.high is not None and result.high < required


def test_inconclusive_says_how_many_more_runs_or_how_much_longer_holds() -> None:
    """An interval that straddles the requirement names the runs (and holds) that would decide."""
    result = check_segment(LOWEND, 5.0, [bracketed(5.3, half_width=0.08)])
    assert result.verdict == "inconclusive"
    assert result.runs_needed is not None and result.runs_needed > 1
    assert re.search(r"about \d+ more runs? \(--repeat\)", result.message), result.message
    assert result.hold_factor is not None and result.hold_factor > 1
    assert "--hold-s" in result.message
    farther = check_segment(LOWEND, 5.0, [bracketed(5.4, half_width=0.08)])
    assert farther.runs_needed is not None and farther.runs_needed < result.runs_needed


def test_held_runs_pass_at_the_load_they_held_and_only_there() -> None:
    """A segment that held to 10X passes a 5X requirement; held to 4X it cannot say for 5X."""
    held = LogBreak(math.log(10.0), math.log(10.0), math.inf, True, "not_reached")
    assert check_segment(LOWEND, 5.0, [held]).verdict == "pass"
    short = LogBreak(math.log(4.0), math.log(4.0), math.inf, True, "not_reached", short=True)
    result = check_segment(LOWEND, 5.0, [short])
    assert result.verdict == "inconclusive" and "--max-multiplier" in result.message


def test_no_usable_break_is_no_verdict_not_a_pass() -> None:
    """A segment no run measured well enough has no verdict, and the gate does not pass it."""
    result = check_segment(LOWEND, 5.0, [])
    assert result.verdict == "inconclusive" and result.status == "no_verdict"


# -- the command ---------------------------------------------------------------------------------


def test_check_passes_fails_and_is_inconclusive_with_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 0 when every requirement holds, 3 when one is below or undecided."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    write_release(tmp_path, "rc1", [7.8, 8.0, 8.2], start=0)
    out = ["--out", str(tmp_path)]
    code, text, _ = run_cli(capsys, "check", "rc1", "--require", f"{LOWEND}=5", *out)
    assert code == 0, text
    assert "verdict: PASS" in text
    code, text, _ = run_cli(capsys, "check", "rc1", "--require", f"{LOWEND}=9", *out)
    assert code == 3 and f"FAIL in {LOWEND}" in text
    code, text, _ = run_cli(capsys, "check", "rc1", "--require", f"{LOWEND}=7.9", *out)
    assert code == 3 and "inconclusive" in text and "--repeat" in text
    # The desktop segment held to the cap (10X) in every run: it passes at 10X, not beyond.
    code, text, _ = run_cli(capsys, "check", "rc1", "--require", f"{DESKTOP}=10", *out)
    assert code == 0, text
    code, text, _ = run_cli(capsys, "check", "rc1", "--require", f"{DESKTOP}=12", *out)
    assert code == 3 and "--max-multiplier of at least 12" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--require", "android-lowend-3g"], "SEGMENT=MULT", id="no-multiplier"),
        pytest.param(["--require", "android-lowend-3g=fast"], "SEGMENT=MULT", id="not-a-number"),
        pytest.param(["--require", "android-lowend-3g=0"], "> 0", id="zero"),
        pytest.param(["--require", "tablet-5g=5"], "no such segment", id="unknown-segment"),
        pytest.param([], "nothing to check", id="no-requirement"),
    ],
)
def test_bad_requirements_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """A malformed or unknown requirement is one line naming it, exit 2, no traceback."""
    write_release(tmp_path, "rc1", [8.0], start=0)
    code, _, err = run_cli(capsys, "check", "rc1", *args, "--out", str(tmp_path))
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_min_break_in_a_profile_is_a_requirement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`min_break` recorded with a run's profiles is checked; --require overrides it."""
    (run,) = write_release(tmp_path, "rc1", [4.0], start=0)
    info = {
        **__import__("json").loads((run / "run.json").read_text()),
        "profiles": [{"name": LOWEND, "min_break": 5.0}],
    }
    write_json(run / "run.json", info)
    code, text, _ = run_cli(capsys, "check", "rc1", "--out", str(tmp_path))
    assert code == 3 and f"FAIL in {LOWEND}" in text
    code, text, _ = run_cli(
        capsys, "check", "rc1", "--require", f"{LOWEND}=3", "--out", str(tmp_path)
    )
    assert code == 0, text


def test_min_break_is_read_from_toml_and_bad_values_name_the_field(tmp_path: Path) -> None:
    """A profile's `min_break` is parsed and validated like every other field."""
    from breakpoint.errors import ProfileError
    from breakpoint.plan.profiles import builtin_dir, load_profile_file

    text = (builtin_dir() / f"{LOWEND}.toml").read_text()
    good = tmp_path / "good.toml"
    good.write_text(text.replace("share = 0.10", "share = 0.10\nmin_break = 5"))
    assert load_profile_file(good).min_break == 5.0
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("share = 0.10", "share = 0.10\nmin_break = -1"))
    with pytest.raises(ProfileError, match=r"bad.toml: min_break: must be > 0"):
        load_profile_file(bad)


# -- CI outputs ----------------------------------------------------------------------------------


def _declarations() -> dict[str, ET.Element]:
    schema = ET.parse(XSD).getroot()
    return {e.get("name", ""): e for e in schema.findall(f"{XS}element")}


def _pattern(type_name: str) -> str | None:
    schema = ET.parse(XSD).getroot()
    for simple in schema.findall(f"{XS}simpleType"):
        if simple.get("name") == type_name:
            node = simple.find(f"{XS}restriction/{XS}pattern")
            return None if node is None else node.get("value")
    return None


def validate_junit(element: ET.Element) -> None:
    """Check a document against junit-10.xsd's declarations: each element declared, its child
    elements among those its type allows, its attributes declared (required ones present),
    SUREFIRE_TIME values matching their pattern, and no text in element-only content."""
    declared = _declarations()
    decl = declared.get(element.tag)
    assert decl is not None, f"<{element.tag}> is not declared in junit-10.xsd"
    if decl.get("type") == "xs:string":  # system-out, system-err: text only
        assert len(element) == 0, f"<{element.tag}> holds elements"
        return
    complex_type = decl.find(f"{XS}complexType")
    assert complex_type is not None, element.tag
    allowed = {ref.get("ref") for ref in complex_type.iter(f"{XS}element")}
    attributes = {a.get("name"): a for a in complex_type.findall(f"{XS}attribute")}
    for name, value in element.attrib.items():
        assert name in attributes, f"<{element.tag}> attribute {name!r} is not declared"
        pattern = _pattern(attributes[name].get("type", ""))
        if pattern is not None:
            assert re.fullmatch(pattern, value), f"{element.tag}@{name}={value!r}"
    for name, attribute in attributes.items():
        if attribute.get("use") == "required":
            assert name in element.attrib, f"<{element.tag}> lacks required {name!r}"
    if complex_type.get("mixed") != "true":
        assert not (element.text or "").strip(), f"<{element.tag}> holds text"
    for child in element:
        assert child.tag in allowed, f"<{child.tag}> is not allowed in <{element.tag}>"
        validate_junit(child)


def test_the_validator_rejects_what_the_schema_rejects() -> None:
    """The schema check is not a rubber stamp: a missing required attribute or a stray element
    fails it."""
    nameless = '<testsuite tests="1" failures="0" errors="0"/>'
    with pytest.raises(AssertionError, match="lacks required 'name'"):
        validate_junit(ET.fromstring(f"<testsuites>{nameless}</testsuites>"))
    with pytest.raises(AssertionError, match="not allowed"):
        validate_junit(ET.fromstring('<testsuites><testcase name="x"/></testsuites>'))


def _cases(document: Path) -> dict[str, ET.Element]:
    root = ET.parse(document).getroot()
    validate_junit(root)
    (suite,) = root.findall("testsuite")
    cases = {case.get("name", ""): case for case in suite.findall("testcase")}
    assert suite.get("tests") == str(len(cases))
    failures = sum(case.find("failure") is not None for case in cases.values())
    assert suite.get("failures") == str(failures)
    return cases


def test_check_writes_valid_junit_with_the_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One test case per required segment; a failure carries the requirement and the break."""
    write_release(tmp_path, "rc1", [4.0], start=0)
    junit = tmp_path / "ci" / "check.xml"
    code, _, _ = run_cli(
        capsys, "check", "rc1", "--require", f"{LOWEND}=5", "--require", f"{DESKTOP}=8",
        "--junit", str(junit), "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 3
    cases = _cases(junit)
    assert set(cases) == {LOWEND, DESKTOP}
    failure = cases[LOWEND].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert message.startswith("fail:") and "≥5X" in message and "breaks at ×4 " in message
    assert cases[DESKTOP].find("failure") is None


def test_compare_writes_valid_junit_regression_fails_inconclusive_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """compare --junit: a regressed segment fails with its ratio; an undecided one is skipped."""
    write_run(tmp_path, "v1", {LOWEND: 10.0, DESKTOP: 8.0}, n=0)
    write_run(tmp_path, "v2", {LOWEND: 6.0, DESKTOP: 7.9}, n=1)
    junit = tmp_path / "compare.xml"
    code, _, _ = run_cli(
        capsys, "compare", "v1", "v2", "--junit", str(junit), "--out", str(tmp_path)
    )
    assert code == 3
    cases = _cases(junit)
    failure = cases[LOWEND].find("failure")
    assert failure is not None and "new/base 0.600" in failure.get("message", "")
    skipped = cases[DESKTOP].find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("inconclusive")


def test_step_summary_only_when_the_variable_is_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Markdown is appended to $GITHUB_STEP_SUMMARY when set, and nothing is written otherwise."""
    write_release(tmp_path, "rc1", [7.8, 8.0, 8.2], start=0)
    write_release(tmp_path, "rc2", [5.0, 5.1, 4.9], start=3)
    summary = tmp_path / "step-summary.md"
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    run_cli(capsys, "check", "rc1", "--require", f"{LOWEND}=5", "--out", str(tmp_path))
    run_cli(capsys, "compare", "rc1", "rc2", "--out", str(tmp_path))
    assert not summary.exists()
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run_cli(capsys, "check", "rc1", "--require", f"{LOWEND}=5", "--out", str(tmp_path))
    code, _, _ = run_cli(capsys, "compare", "rc1", "rc2", "--out", str(tmp_path))
    assert code == 3
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, not replaced
    assert "### breakpoint check rc1" in text and "verdict: PASS" in text
    assert "### breakpoint compare rc1 vs rc2" in text and "REGRESSION" in text
    assert "| segment |" in text and "|---|" in text
