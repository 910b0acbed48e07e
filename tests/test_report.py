"""The HTML report, summary.json and summary.md of stored runs built without load (sim/runbuilder).

The browser test opens report.html in headless Chromium: a probe copy of the page (the report's
own Content-Security-Policy plus an inline script) records script errors, console errors and
warnings, blocked fetches and every resource the page asked for; the unmodified page is then
screenshotted, with host resolution disabled so that nothing could leave the machine anyway.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from breakpoint.load.writer import RunWriter
from breakpoint.output.digest import INTERVAL_MEANING
from breakpoint.output.publish import MARKDOWN_FILE, REPORT_FILE, SUMMARY_FILE, publish
from breakpoint.runs.store import load_run, write_json
from breakpoint.sim.runbuilder import RunSpec, build_run
from breakpoint.sim.stepbuilder import SCRIPT_ENDPOINT, Server

HOSTILE_LABEL = "<script>alert('label')</script>"
HOSTILE_HOST = "<script>alert('host')</script>.example"
HOSTILE_REASON = "interrupted: <script>alert('reason')</script>"
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # Nothing may resolve: a request that slipped past every other check would still fail.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
)
# The report's policy plus inline scripts, so that the probe below may run.
PROBE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'unsafe-inline'"
)
PROBE_SCRIPT = """<script>
(function () {
  var seen = [];
  function note(kind, text) { seen.push(kind + ": " + text); }
  window.addEventListener("error", function (e) {
    note("error", e.message || (e.target && (e.target.src || e.target.href)) || "?");
  }, true);
  window.addEventListener("securitypolicyviolation", function (e) {
    note("blocked", e.blockedURI + " (" + e.violatedDirective + ")");
  });
  ["error", "warn"].forEach(function (level) {
    var original = console[level];
    console[level] = function () {
      note("console." + level, Array.prototype.join.call(arguments, " "));
      return original.apply(console, arguments);
    };
  });
  window.addEventListener("load", function () {
    setTimeout(function () {
      var out = document.createElement("pre");
      out.id = "bp-probe";
      out.textContent = JSON.stringify({
        problems: seen,
        resources: performance.getEntriesByType("resource").map(function (r) { return r.name; }),
        svgs: document.getElementsByTagName("svg").length,
        sections: Array.prototype.map.call(document.querySelectorAll("section[id]"),
                                           function (s) { return s.id; }),
        height: document.documentElement.scrollHeight
      });
      document.body.appendChild(out);
    }, 200);
  });
})();
</script>"""


# --- Chromium ------------------------------------------------------------------------------------


@functools.cache
def _chromium() -> str | None:
    """The browser's path; installs Debian's chromium once when allowed (root, and CI or opt-in)."""
    found = next((p for p in CHROMIUM_PATHS if Path(p).is_file()), None)
    if found or shutil.which("apt-get") is None or os.geteuid() != 0:
        return found
    if not (os.environ.get("CI") or os.environ.get("BREAKPOINT_INSTALL_CHROMIUM")):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    for command in (install, ["apt-get", "update"], install):
        subprocess.run(command, env=env, capture_output=True, timeout=900, check=False)
        if command is install and Path(CHROMIUM_PATHS[0]).is_file():
            return CHROMIUM_PATHS[0]
    return None


def _require_chromium() -> str:
    path = _chromium()
    if path is None:
        pytest.skip(
            "Chromium is not installed (/usr/bin/chromium) and could not be installed: "
            "apt-get install chromium runs only as root with CI=1 or BREAKPOINT_INSTALL_CHROMIUM=1"
        )
    return path


def _run_chromium(browser: str, profile_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console_lines(stderr: str) -> list[str]:
    """Chromium's log of the page's console (errors, warnings, CSP refusals)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _probe_copy(html: str) -> str:
    policy = re.compile(r'<meta http-equiv="Content-Security-Policy" content="[^"]*">')
    assert policy.search(html), "the report declares its own Content-Security-Policy"
    probe = f'<meta http-equiv="Content-Security-Policy" content="{PROBE_POLICY}">\n{PROBE_SCRIPT}'
    return policy.sub(lambda _m: probe, html, count=1)


def _image_stats(png: Path) -> tuple[tuple[int, int], float, int, float]:
    """(size, grey-level standard deviation, distinct colours, share of non-background pixels)."""
    from PIL import Image, ImageStat  # matplotlib's own dependency

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        grey = rgb.convert("L")
        stddev = ImageStat.Stat(grey).stddev[0]
        colours = len(rgb.getcolors(maxcolors=1 << 20) or [])
        histogram = grey.histogram()
        background = max(range(256), key=lambda v: histogram[v])
        share = 1 - histogram[background] / (grey.width * grey.height)
        return rgb.size, stddev, colours, share


# --- stored runs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 steps x 7 segments, published; hostile label, endpoint and blocked host."""
    spec = RunSpec(steps=20, segments=7, label=HOSTILE_LABEL, blocked_hosts={HOSTILE_HOST: 3})
    run = build_run(tmp_path_factory.mktemp("reports"), spec, writer=RunWriter)
    publish(run)
    return run


@pytest.fixture(scope="module")
def partial_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Interrupted during its 9th step (the last one is partial)."""
    spec = RunSpec(steps=9, segments=4, status="interrupted", stop_reason=HOSTILE_REASON)
    run = build_run(tmp_path_factory.mktemp("reports"), spec, writer=RunWriter)
    publish(run)
    return run


def _html(run: Path) -> str:
    return (run / REPORT_FILE).read_text(encoding="utf-8")


# --- tests ---------------------------------------------------------------------------------------


def test_builder_writes_a_realistic_run(big_run: Path) -> None:
    """20 steps x 7 segments, with refinement, repeats, errors by kind, parts and endpoints."""
    stored = load_run(big_run)
    assert len(stored.steps) == 20
    assert all(len(s.segments) == 7 for s in stored.steps)
    assert {"ramp", "refine", "repeat"} <= {s.phase for s in stored.steps}
    segs = [seg for s in stored.steps for seg in s.segments.values()]
    kinds = {k for seg in segs for k in seg.errors}
    assert {"http_4xx", "http_5xx", "connection"} <= kinds
    assert all(set(seg.parts_ms) == {"network", "server", "device"} for seg in segs)
    assert all(SCRIPT_ENDPOINT in seg.endpoints and seg.histogram for seg in segs)


def test_report_renders_in_chromium_without_errors_or_requests(
    big_run: Path, tmp_path: Path
) -> None:
    """Headless Chromium shows the report with no script or console error and no request at all."""
    browser = _require_chromium()
    html = _html(big_run)
    # Statically: nothing refers outside the page (SVG's xlink:href="#id" stays inside it).
    for ref in re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', html):
        assert ref.startswith(("#", "data:")), f"reference out of the page: {ref}"
    assert "@import" not in html
    assert not re.search(r"url\(\s*['\"]?(?!#|data:)", html)

    probe = tmp_path / "probe.html"
    probe.write_text(_probe_copy(html), encoding="utf-8")
    done = _run_chromium(
        browser, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="bp-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, "the probe did not run: " + done.stderr[-2000:]
    record: dict[str, Any] = json.loads(unescape(found.group(1)))
    assert record["problems"] == []
    assert record["resources"] == []
    assert _console_lines(done.stderr) == []
    assert record["svgs"] >= 1 + 7 + 3  # ladder, 7 curves, legend, decomposition, throughput
    assert {"headline", "ladder", "curves", "decomposition", "load", "warnings"} <= set(
        record["sections"]
    )

    # The unmodified page, under its own policy: a screenshot, and again no console output.
    png = tmp_path / "report.png"
    shot = _run_chromium(
        browser,
        tmp_path / "profile",
        "--window-size=1280,2400",
        f"--screenshot={png}",
        (big_run / REPORT_FILE).as_uri(),
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert _console_lines(shot.stderr) == []
    size, stddev, colours, ink = _image_stats(png)
    assert size == (1280, 2400)
    assert png.stat().st_size > 50_000
    assert stddev > 10, "the screenshot is (nearly) one flat colour"
    assert colours > 200, "the screenshot has too few colours to hold charts"
    assert ink > 0.05, "the screenshot is mostly background"


def test_probe_catches_script_errors_and_requests(tmp_path: Path) -> None:
    """The browser check itself: a page with an error and outside references is caught."""
    browser = _require_chromium()
    bad = (
        '<!doctype html><html><head><meta http-equiv="Content-Security-Policy" content="x">'
        '</head><body><img src="http://example.com/a.png"><script>nope();</script>'
        '<link rel="stylesheet" href="https://cdn.example.com/a.css"></body></html>'
    )
    page = tmp_path / "bad.html"
    page.write_text(_probe_copy(bad), encoding="utf-8")
    done = _run_chromium(
        browser, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()
    )
    found = re.search(r'<pre id="bp-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    record = json.loads(unescape(found.group(1)))
    problems = " ".join(record["problems"])
    assert "nope" in problems and "blocked: http://example.com/a.png" in problems
    assert set(record["resources"]) == {"http://example.com/a.png", "https://cdn.example.com/a.css"}
    assert len(_console_lines(done.stderr)) >= 3


def test_hostile_strings_are_escaped_in_html_and_plain_in_text_outputs(
    big_run: Path, partial_run: Path
) -> None:
    """Label, endpoint, host and stop reason with <script> appear escaped, never raw."""
    html = _html(big_run)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#39;label&#39;)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the endpoint named by the diagnosis
    assert "&lt;script&gt;alert(&#39;host&#39;)&lt;/script&gt;.example" in html
    partial = _html(partial_run)
    assert "<script" not in partial.lower()
    assert "interrupted: &lt;script&gt;alert(&#39;reason&#39;)&lt;/script&gt;" in partial

    # summary.md is Markdown that CI systems render (HTML allowed there): names are escaped so
    # a hostile label cannot become markup, and it carries no HTML of its own.
    markdown = (big_run / MARKDOWN_FILE).read_text(encoding="utf-8")
    assert HOSTILE_LABEL not in markdown and "<script" not in markdown.lower()
    assert "&lt;script&gt;alert('label')&lt;/script&gt;" in markdown
    assert "<html" not in markdown and "<table" not in markdown and "<svg" not in markdown
    # Both say in one sentence what a 95% interval claims.
    assert INTERVAL_MEANING in markdown
    assert INTERVAL_MEANING in unescape(_html(big_run))

    # summary.json round-trips: parsed and written again, byte for byte the same file.
    path = big_run / SUMMARY_FILE
    text = path.read_text(encoding="utf-8")
    summary = json.loads(text)
    again = path.with_name("again.json")
    write_json(again, summary)
    assert again.read_text(encoding="utf-8") == text
    assert summary["label"] == HOSTILE_LABEL
    assert summary["schema"] >= 1 and summary["model"] == "open"
    assert len(summary["segments"]) == 7 and len(summary["steps"]) == 20
    for seg in summary["segments"]:
        assert {"multiplier", "low", "high", "label", "criterion"} <= set(seg["break"])
    for step in summary["steps"]:
        for values in step["segments"].values():
            assert {"p50_ms", "p95_ms", "p99_ms", "error_rate", "offered_rps"} <= set(values)


def test_partial_run_report_says_it_was_interrupted(partial_run: Path) -> None:
    """An interrupted run's report names its status and marks the step that was cut short."""
    html = _html(partial_run)
    assert 'badge partial">interrupted' in html
    assert "the run did not complete" in html
    assert "partial</span>" in html  # the last step's badge in the steps table
    summary = json.loads((partial_run / SUMMARY_FILE).read_text(encoding="utf-8"))
    assert summary["status"] == "interrupted"
    assert summary["steps"][-1]["partial"] is True


def test_run_where_nothing_broke_says_so(tmp_path: Path) -> None:
    """A server with ample capacity: the headline says no segment broke, up to the level held."""
    spec = RunSpec(steps=10, segments=3, server=Server(workers=8, service_ms=5.0))
    run = build_run(tmp_path, spec, writer=RunWriter)
    html = publish(run).read_text(encoding="utf-8")
    assert "No segment broke up to 10X." in html
    assert "breaks first" not in html
    assert "3 of 3 segments still hold at 10X." in html


def test_ladder_and_curves_are_drawn(big_run: Path) -> None:
    """The ladder and one degradation curve per segment are inline SVG in their sections."""
    html = _html(big_run)
    ladder = html[html.index('<section id="ladder">') : html.index('<section id="curves">')]
    curves = html[html.index('<section id="curves">') : html.index('<section id="decomposition">')]
    assert ladder.count("<svg") == 1
    assert curves.count("<svg") == 7 + 1  # one per segment, and the shared legend
    summary = json.loads((big_run / SUMMARY_FILE).read_text(encoding="utf-8"))
    for seg in summary["segments"]:
        assert seg["profile"] in ladder and f"<h3>{seg['profile']}</h3>" in curves


def test_twenty_steps_by_seven_segments_report_is_under_2_mb(big_run: Path) -> None:
    """The largest usual report (20 steps x 7 segments) stays small enough to mail."""
    assert (big_run / REPORT_FILE).stat().st_size < 2_000_000
