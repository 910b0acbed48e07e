"""Profiles: the built-ins carry the numbers in docs/design.md#profiles; bad profiles are
refused field by field."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from breakpoint.errors import ProfileError
from breakpoint.plan.profiles import (
    builtin_dir,
    builtin_profiles,
    default_profile_names,
    normalised_shares,
    profile_from_dict,
    resolve_profiles,
)

GOOD = """
name = "kiosk"
share = 2
[network]
rtt_ms = 100
down_kbps = 1000
up_kbps = 500
[device]
cpu_slowdown = 2
[slo]
p95_ms = 1500
"""


@pytest.mark.parametrize(
    ("name", "rtt", "down", "up", "cpu"),
    [
        pytest.param("android-lowend-3g", 400, 400, 400, 6, id="lowend-3g"),
        pytest.param("android-midtier-3g", 300, 700, 700, 4, id="midtier-3g"),
        pytest.param("android-slow4g", 150, 1600, 750, 4, id="slow4g"),
        pytest.param("mobile-fast4g", 60, 9000, 1500, 2, id="fast4g"),
        pytest.param("desktop-cable", 28, 5000, 1000, 1, id="cable"),
        pytest.param("desktop-broadband", 40, 10240, 5000, 1, id="broadband"),
        pytest.param("2g-rural", 1300, 20, 18, 6, id="2g-rural"),
    ],
)
def test_builtin_numbers_match_design(
    name: str, rtt: float, down: float, up: float, cpu: float
) -> None:
    """Each built-in profile carries the RTT, bandwidth and CPU slowdown of its source."""
    p = builtin_profiles()[name]
    assert (p.network.rtt_ms, p.network.down_kbps, p.network.up_kbps) == (rtt, down, up)
    assert p.device.cpu_slowdown == cpu
    assert p.slo.p95_ms > 0 and p.source


def test_defaults_exclude_the_opt_in_stress_profile() -> None:
    """The default set is the six everyday profiles; 2g-rural is opt-in."""
    names = default_profile_names()
    assert len(names) == 6 and "2g-rural" not in names
    assert builtin_profiles()["2g-rural"].network.loss_pct == 2.0


def test_builtins_are_found_from_the_repository() -> None:
    """An editable install reads the built-ins from the repository's profiles/ folder."""
    assert (builtin_dir() / "android-lowend-3g.toml").is_file()


def test_user_profile_file_and_folder(tmp_path: Path) -> None:
    """A user's TOML file or folder is accepted next to built-in names."""
    (tmp_path / "kiosk.toml").write_text(GOOD)
    by_file = resolve_profiles([str(tmp_path / "kiosk.toml"), "desktop-cable"])
    by_folder = resolve_profiles([str(tmp_path)])
    assert [p.name for p in by_file] == ["kiosk", "desktop-cable"]
    assert by_folder[0].network.max_connections == 6  # default applies


def test_shares_are_normalised_over_the_chosen_profiles(tmp_path: Path) -> None:
    """Traffic shares are relative weights, normalised over a run's profiles."""
    (tmp_path / "kiosk.toml").write_text(GOOD)
    chosen = resolve_profiles([str(tmp_path / "kiosk.toml"), "desktop-cable"])
    shares = normalised_shares(chosen)
    assert math.isclose(sum(shares.values()), 1.0)
    assert math.isclose(shares["kiosk"], 2 / 2.15)


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        pytest.param(("rtt_ms = 100", "rtt_ms = -5"), "network.rtt_ms", ">= 0", id="negative-rtt"),
        pytest.param(
            ("down_kbps = 1000", "down_kbps = 0"), "network.down_kbps", "> 0", id="zero-bandwidth"
        ),
        pytest.param(("share = 2", "share = 0"), "share", "> 0", id="zero-share"),
        pytest.param(("share = 2", "share = -1"), "share", "> 0", id="negative-share"),
        pytest.param(("share = 2", 'share = "big"'), "share", "number", id="text-share"),
        pytest.param(
            ("cpu_slowdown = 2", "cpu_slowdown = 0.5"),
            "device.cpu_slowdown",
            ">= 1",
            id="cpu-below-1",
        ),
        pytest.param(("p95_ms = 1500", "p95_ms = 0"), "slo.p95_ms", "> 0", id="zero-slo"),
        pytest.param(
            ("p95_ms = 1500", "p95_ms = 1500\nerror_rate = 2"),
            "slo.error_rate",
            "<= 1",
            id="error-rate-above-1",
        ),
        pytest.param(
            ("rtt_ms = 100", "rtt_ms = 100\nbandwidth = 3"),
            "network.bandwidth",
            "unknown field",
            id="unknown-network-field",
        ),
        pytest.param(
            ('name = "kiosk"', 'name = "kiosk"\ncolour = "red"'),
            "colour",
            "unknown field",
            id="unknown-top-field",
        ),
        pytest.param(("up_kbps = 500", ""), "network.up_kbps", "missing", id="missing-field"),
        pytest.param(
            ('name = "kiosk"', 'name = "bad name!"'), "name", "not a valid name", id="bad-name"
        ),
        pytest.param(("[slo]\np95_ms = 1500", ""), "slo", "missing", id="missing-section"),
        pytest.param(
            ("rtt_ms = 100", "rtt_ms = true"), "network.rtt_ms", "number", id="boolean-rtt"
        ),
        pytest.param(("rtt_ms = 100", "rtt_ms = nan"), "network.rtt_ms", "finite", id="nan-rtt"),
        pytest.param(('name = "kiosk"', "name = [1"), "", "invalid TOML", id="bad-toml"),
    ],
)
def test_bad_profiles_are_refused_with_file_and_field(
    tmp_path: Path, edit: tuple[str, str], field: str, words: str
) -> None:
    """Every invalid value is refused by one message naming the file, the field and the rule."""
    path = tmp_path / "kiosk.toml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(ProfileError) as caught:
        resolve_profiles([str(path)])
    message = str(caught.value)
    assert str(path) in message and words in message
    if field:
        assert field in message


def test_unknown_profile_names_the_choices() -> None:
    """An unknown name lists the built-ins and how to give a file."""
    with pytest.raises(ProfileError, match=r"unknown profile 'iphone'.*android-lowend-3g"):
        resolve_profiles(["iphone"])


def test_duplicate_profiles_are_refused() -> None:
    """The same segment twice would double its traffic silently: refused."""
    with pytest.raises(ProfileError, match="given twice"):
        resolve_profiles(["desktop-cable", "desktop-cable"])


def test_stored_profiles_round_trip() -> None:
    """A profile written into run.json reads back equal, including 'no emulation'."""
    for p in builtin_profiles().values():
        assert profile_from_dict(p.as_dict()) == p.__class__(
            **{**p.__dict__, "default": False, "path": ""}
        )
        bare = p.without_emulation()
        assert profile_from_dict(bare.as_dict()).network.down_kbps == math.inf
        assert not bare.emulated
