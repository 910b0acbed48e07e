"""Device and network profiles (user segments): the objects, their TOML schema and validation.

A profile is loaded from a TOML file (built-in or the user's); every field is checked, unknown
fields are refused, and every mistake is reported as one `ProfileError` naming the file, the
field and the fix. Pure: reads files, imports no locust.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from breakpoint.errors import ProfileError
from breakpoint.plan.objectives import Objective, parse_objectives

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Network:
    """The emulated link: packet-level RTT, bandwidth, loss, and the client's limits."""

    rtt_ms: float
    down_kbps: float
    up_kbps: float
    loss_pct: float = 0.0
    jitter_ms: float = 0.0
    timeout_s: float = 10.0
    max_connections: int = 6
    initial_cwnd_segments: int = 10


@dataclass(frozen=True)
class Device:
    """Device processing time: (base_ms + ms_per_kb * KB) * cpu_slowdown per response."""

    cpu_slowdown: float = 1.0
    base_ms: float = 2.0
    ms_per_kb: float = 0.05


@dataclass(frozen=True)
class Slo:
    """The segment's service-level objective in steady state."""

    p95_ms: float  # over all requests; applies only when there are no objectives
    error_rate: float = 0.01
    # Per endpoint / page view (docs/design.md#objectives): when given, they replace p95_ms.
    objectives: tuple[Objective, ...] = ()


@dataclass(frozen=True)
class Profile:
    """One user segment: who the users are, how much of the traffic they are, and their SLO."""

    name: str
    description: str
    share: float
    network: Network
    device: Device
    slo: Slo
    default: bool = False
    source: str = ""
    path: str = ""
    min_break: float | None = None  # required breaking point (X) for `breakpoint check`

    def with_slo_p95(self, p95_ms: float) -> Profile:
        return replace(self, slo=replace(self.slo, p95_ms=p95_ms))

    def with_objectives(self, objectives: tuple[Objective, ...]) -> Profile:
        return replace(self, slo=replace(self.slo, objectives=objectives))

    def without_emulation(self) -> Profile:
        """The same segment with no network or device time (for calibration runs)."""
        return replace(
            self,
            network=replace(
                self.network,
                rtt_ms=0.0,
                down_kbps=math.inf,
                up_kbps=math.inf,
                loss_pct=0.0,
                jitter_ms=0.0,
            ),
            device=replace(self.device, cpu_slowdown=1.0, base_ms=0.0, ms_per_kb=0.0),
        )

    @property
    def emulated(self) -> bool:
        n, d = self.network, self.device
        return bool(
            n.rtt_ms
            or math.isfinite(n.down_kbps)
            or math.isfinite(n.up_kbps)
            or d.base_ms
            or d.ms_per_kb
        )

    def as_dict(self) -> dict[str, Any]:
        def finite(x: float) -> float | None:
            return x if math.isfinite(x) else None

        n, d = self.network, self.device
        return {
            "name": self.name,
            "description": self.description,
            "share": self.share,
            "network": {
                "rtt_ms": n.rtt_ms,
                "down_kbps": finite(n.down_kbps),
                "up_kbps": finite(n.up_kbps),
                "loss_pct": n.loss_pct,
                "jitter_ms": n.jitter_ms,
                "timeout_s": n.timeout_s,
                "max_connections": n.max_connections,
                "initial_cwnd_segments": n.initial_cwnd_segments,
            },
            "device": {
                "cpu_slowdown": d.cpu_slowdown,
                "base_ms": d.base_ms,
                "ms_per_kb": d.ms_per_kb,
            },
            # objectives only when set: a run without them stores what it always stored
            "slo": {"p95_ms": self.slo.p95_ms, "error_rate": self.slo.error_rate}
            | (
                {"objectives": [o.as_dict() for o in self.slo.objectives]}
                if self.slo.objectives
                else {}
            ),
            "source": self.source,
        } | ({} if self.min_break is None else {"min_break": self.min_break})


def profile_from_dict(d: Mapping[str, Any]) -> Profile:
    """Rebuild a profile stored in a run (as written by Profile.as_dict)."""

    def inf(x: Any) -> float:
        return math.inf if x is None else float(x)

    n, dev, slo = d["network"], d["device"], d["slo"]
    return Profile(
        name=d["name"],
        description=d.get("description", d["name"]),
        share=float(d["share"]),
        network=Network(
            rtt_ms=float(n["rtt_ms"]),
            down_kbps=inf(n["down_kbps"]),
            up_kbps=inf(n["up_kbps"]),
            loss_pct=float(n.get("loss_pct", 0)),
            jitter_ms=float(n.get("jitter_ms", 0)),
            timeout_s=float(n.get("timeout_s", 10)),
            max_connections=int(n.get("max_connections", 6)),
            initial_cwnd_segments=int(n.get("initial_cwnd_segments", 10)),
        ),
        device=Device(
            cpu_slowdown=float(dev["cpu_slowdown"]),
            base_ms=float(dev["base_ms"]),
            ms_per_kb=float(dev["ms_per_kb"]),
        ),
        slo=Slo(
            p95_ms=float(slo["p95_ms"]),
            error_rate=float(slo["error_rate"]),
            objectives=tuple(Objective.from_dict(o) for o in slo.get("objectives", ())),
        ),
        source=d.get("source", ""),
        min_break=None if d.get("min_break") is None else float(d["min_break"]),
    )


# field name -> (kind, lower bound, lower inclusive, upper bound, required)
_Rule = tuple[type, float, bool, float, bool]
_TOP: dict[str, tuple[type, bool]] = {
    "name": (str, True),
    "description": (str, False),
    "share": (float, True),
    "default": (bool, False),
    "source": (str, False),
    "min_break": (float, False),
}
_SECTIONS: dict[str, dict[str, _Rule]] = {
    "network": {
        "rtt_ms": (float, 0, True, 600_000, True),
        "down_kbps": (float, 0, False, 100_000_000, True),
        "up_kbps": (float, 0, False, 100_000_000, True),
        "loss_pct": (float, 0, True, 50, False),
        "jitter_ms": (float, 0, True, 600_000, False),
        "timeout_s": (float, 0, False, 3600, False),
        "max_connections": (int, 1, True, 64, False),
        "initial_cwnd_segments": (int, 1, True, 1000, False),
    },
    "device": {
        "cpu_slowdown": (float, 1, True, 100, True),
        "base_ms": (float, 0, True, 60_000, False),
        "ms_per_kb": (float, 0, True, 1000, False),
    },
    "slo": {
        "p95_ms": (float, 0, False, 3_600_000, True),
        "error_rate": (float, 0, True, 1, False),
    },
}
_FIXES = {
    "rtt_ms": "a round-trip time in milliseconds, e.g. rtt_ms = 150",
    "down_kbps": "a bandwidth in kbit/s greater than 0, e.g. down_kbps = 1600",
    "up_kbps": "a bandwidth in kbit/s greater than 0, e.g. up_kbps = 750",
    "share": "a relative traffic weight greater than 0, e.g. share = 0.2",
    "cpu_slowdown": "1 for a desktop, 4 to 6 for a low-end phone",
    "p95_ms": "the p95 latency objective in milliseconds, e.g. p95_ms = 2000",
    "error_rate": "a fraction between 0 and 1, e.g. error_rate = 0.01",
    "min_break": "the lowest acceptable breaking point as a multiplier, e.g. min_break = 5",
}


def _check_number(value: Any, rule: _Rule, *, source: str, field: str) -> float | int:
    kind, low, low_inclusive, high, _ = rule
    fix = _FIXES.get(field.rsplit(".", 1)[-1], "")
    hint = f" ({fix})" if fix else ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"must be a number, got {value!r}{hint}", source=source, field=field)
    if kind is int and not float(value).is_integer():
        raise ProfileError(f"must be a whole number, got {value!r}", source=source, field=field)
    if not math.isfinite(value):
        raise ProfileError(f"must be finite, got {value!r}{hint}", source=source, field=field)
    too_low = value < low if low_inclusive else value <= low
    if too_low:
        bound = f">= {low:g}" if low_inclusive else f"> {low:g}"
        raise ProfileError(f"must be {bound}, got {value!r}{hint}", source=source, field=field)
    if value > high:
        raise ProfileError(f"must be <= {high:g}, got {value!r}{hint}", source=source, field=field)
    return int(value) if kind is int else float(value)


def parse_profile(data: Mapping[str, Any], *, source: str) -> Profile:
    """Validate one profile's TOML table; raise ProfileError naming the field on any mistake."""
    allowed = set(_TOP) | set(_SECTIONS) | {"objectives"}
    for key in data:
        if key not in allowed:
            raise ProfileError(
                f"unknown field {key!r} (allowed: {', '.join(sorted(allowed))})",
                source=source,
                field=key,
            )
    for key, (kind, required) in _TOP.items():
        if required and key not in data:
            raise ProfileError("is missing", source=source, field=key)
        if key in data and kind is not float and not isinstance(data[key], kind):
            raise ProfileError(
                f"must be a {kind.__name__}, got {data[key]!r}", source=source, field=key
            )
    name = data["name"]
    if not _NAME_RE.match(name):
        raise ProfileError(
            f"{name!r} is not a valid name (use letters, digits, '-', '_' or '.', up to 64)",
            source=source,
            field="name",
        )
    share = _check_number(
        data["share"], (float, 0, False, 1_000_000, True), source=source, field="share"
    )
    min_break = None
    if "min_break" in data:
        min_break = float(
            _check_number(
                data["min_break"],
                (float, 0, False, 1_000_000, False),
                source=source,
                field="min_break",
            )
        )
    sections: dict[str, dict[str, Any]] = {}
    for section, rules in _SECTIONS.items():
        table = data.get(section)
        if table is None:
            raise ProfileError(f"section [{section}] is missing", source=source, field=section)
        if not isinstance(table, dict):
            raise ProfileError(f"must be a table [{section}]", source=source, field=section)
        values: dict[str, Any] = {}
        for key in table:
            if key not in rules:
                raise ProfileError(
                    f"unknown field (allowed: {', '.join(rules)})",
                    source=source,
                    field=f"{section}.{key}",
                )
        for key, rule in rules.items():
            if key not in table:
                if rule[4]:
                    raise ProfileError("is missing", source=source, field=f"{section}.{key}")
                continue
            values[key] = _check_number(table[key], rule, source=source, field=f"{section}.{key}")
        sections[section] = values
    return Profile(
        name=name,
        description=data.get("description", name),
        share=float(share),
        network=Network(**sections["network"]),
        device=Device(**sections["device"]),
        slo=Slo(
            **sections["slo"],
            objectives=parse_objectives(data["objectives"], source=source)
            if "objectives" in data
            else (),
        ),
        default=bool(data.get("default", False)),
        source=data.get("source", ""),
        path=source,
        min_break=min_break,
    )


def load_profile_file(path: Path) -> Profile:
    """Read and validate one profile TOML file."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError("file not found", source=source) from None
    except OSError as exc:
        raise ProfileError(f"cannot read: {exc.strerror}", source=source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"invalid TOML: {exc}", source=source) from None
    return parse_profile(data, source=source)


def builtin_dir() -> Path:
    """Where the built-in profiles are: inside the wheel, or the repository's `profiles/`."""
    packaged = Path(__file__).resolve().parents[1] / "builtin_profiles"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "profiles"


def builtin_profiles() -> dict[str, Profile]:
    """All built-in profiles by name, in a stable order (slowest network first)."""
    found = [load_profile_file(p) for p in sorted(builtin_dir().glob("*.toml"))]
    found.sort(key=lambda p: (-p.network.rtt_ms, p.name))
    return {p.name: p for p in found}


def default_profile_names() -> list[str]:
    return [name for name, p in builtin_profiles().items() if p.default]


def resolve_profiles(specs: Iterable[str], *, source: str = "--profiles") -> list[Profile]:
    """Names or TOML paths (files or folders) -> profiles; unknowns and duplicates refused."""
    builtins = builtin_profiles()
    chosen: list[Profile] = []
    for raw in specs:
        spec = raw.strip()
        if not spec:
            continue
        path = Path(spec)
        if spec in builtins and not path.exists():
            chosen.append(builtins[spec])
        elif path.is_dir():
            files = sorted(path.glob("*.toml"))
            if not files:
                raise ProfileError(f"folder {spec!r} holds no .toml profile", source=source)
            chosen.extend(load_profile_file(f) for f in files)
        elif path.suffix == ".toml" or path.exists():
            chosen.append(load_profile_file(path))
        else:
            raise ProfileError(
                f"unknown profile {spec!r} (built-in: {', '.join(builtins)}; or give a .toml path)",
                source=source,
            )
    if not chosen:
        raise ProfileError("no profile given", source=source)
    seen: set[str] = set()
    for p in chosen:
        if p.name in seen:
            raise ProfileError(f"profile {p.name!r} is given twice", source=source)
        seen.add(p.name)
    return chosen


def normalised_shares(profiles: Iterable[Profile]) -> dict[str, float]:
    """Traffic shares are relative weights: normalise them over the profiles of a run."""
    items = list(profiles)
    total = sum(p.share for p in items)
    return {p.name: p.share / total for p in items}
