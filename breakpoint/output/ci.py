"""What CI systems read from `compare` and `check`: JUnit XML and a GitHub step summary.

JUnit XML follows the Jenkins xUnit plugin's junit-10.xsd, the schema CI systems read: one
`testsuite` with one `testcase` per segment; a regression or a requirement not shown to hold is
a `failure` whose message carries the numbers; an undecided comparison (exit 0) is `skipped`,
so it shows without failing the build. The step summary is Markdown appended to the file named
by `$GITHUB_STEP_SUMMARY`; the command line passes that path in (docs/design.md#ci-outputs).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from breakpoint.errors import StoreError


@dataclass(frozen=True)
class CaseResult:
    """One segment as a test case: `failure` or `skipped` set its outcome (None: passed)."""

    name: str
    failure: str | None = None
    skipped: str | None = None
    output: str = ""  # system-out: the numbers, whatever the outcome


def junit_xml(suite: str, cases: Sequence[CaseResult], *, classname: str) -> bytes:
    """A JUnit XML document (testsuites > testsuite > testcase) for the cases."""
    failures = sum(c.failure is not None for c in cases)
    skipped = sum(c.failure is None and c.skipped is not None for c in cases)
    root = ET.Element(
        "testsuites", name="breakpoint", tests=str(len(cases)), failures=str(failures), errors="0"
    )
    node = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
    )
    for case in cases:
        element = ET.SubElement(node, "testcase", name=case.name, classname=classname)
        if case.failure is not None:
            failure = ET.SubElement(element, "failure", message=case.failure, type="breakpoint")
            failure.text = case.failure
        elif case.skipped is not None:
            ET.SubElement(element, "skipped", message=case.skipped)
        if case.output:
            ET.SubElement(element, "system-out").text = case.output
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_junit(path: Path, suite: str, cases: Sequence[CaseResult], *, classname: str) -> None:
    """Write the JUnit XML file; StoreError naming the path when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(junit_xml(suite, cases, classname=classname))
    except OSError as exc:
        raise StoreError(f"{path}: cannot write the JUnit file ({exc.strerror})") from None


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    def cells(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    return [cells(headers), "|" + "---|" * len(headers), *(cells(r) for r in rows)]


def append_step_summary(path: Path, lines: Sequence[str]) -> None:
    """Append Markdown to the step summary file (GitHub Actions' $GITHUB_STEP_SUMMARY)."""
    try:
        with path.open("a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n\n")
    except OSError as exc:
        raise StoreError(f"{path}: cannot append the step summary ({exc.strerror})") from None
