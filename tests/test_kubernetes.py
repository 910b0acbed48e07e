"""deploy/kubernetes/: the manifests parse, and their commands and ports agree with the CLI.

No cluster here: each container's `breakpoint run ...` is parsed by the real click command (so a
renamed or removed option fails this test), and the wiring between master, Service and workers
(port, Service name, worker count, identical plan options) is checked the way Kubernetes and
Locust will use it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from breakpoint.cli.run import run as run_command
from breakpoint.plan.profiles import resolve_profiles

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
DISTRIBUTION = {"--master", "--worker", "--master-bind", "--master-port", "--master-host",
                "--expect-workers"}  # fmt: skip


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def named(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"exactly one {kind} {name}"
    return found[0]


def plan_env() -> dict[str, str]:
    return dict(named("ConfigMap", "breakpoint-plan")["data"])


def breakpoint_argv(container: dict[str, Any]) -> list[str]:
    """The `breakpoint run` command line of a container, with the plan's variables filled in."""
    script = " ".join(container["args"])
    match = re.search(r"breakpoint run (.*?)(?:;|&&|$)", script)
    assert match, f"no `breakpoint run` in {container['name']}"
    env = plan_env()
    text = re.sub(r'"\$(\w+)"', lambda m: shlex.quote(env[m.group(1)]), match.group(1))
    return shlex.split(text)


def runs() -> dict[str, tuple[dict[str, Any], dict[str, Any], list[str]]]:
    """Workload name -> (workload, its pod spec, its breakpoint argv)."""
    out = {}
    for doc in documents():
        if doc["kind"] in ("Deployment", "Job"):
            pod = doc["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            out[doc["metadata"]["name"]] = (doc, pod, breakpoint_argv(container))
    return out


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def plan_part(argv: list[str]) -> list[str]:
    """The argv without the distribution options (these differ between master and worker)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in DISTRIBUTION:
            skip = arg not in ("--master", "--worker")
            continue
        out.append(arg)
    return out


PAIRS = [
    ("breakpoint-master", "breakpoint-worker"),
    ("breakpoint-ci-master", "breakpoint-ci-worker"),
]


def test_every_command_parses_with_the_real_cli() -> None:
    found = runs()
    assert set(found) == {name for pair in PAIRS for name in pair}
    for name, (_, _, argv) in found.items():
        ctx = run_command.make_context("run", list(argv))  # raises on an unknown or bad option
        assert ctx.params["host"] == plan_env()["TARGET_URL"], name
        assert ctx.params["baseline_rps"] == float(plan_env()["BASELINE_RPS"]), name


@pytest.mark.parametrize(("master_name", "worker_name"), PAIRS)
def test_master_service_and_workers_agree(master_name: str, worker_name: str) -> None:
    found = runs()
    master, master_pod, master_argv = found[master_name]
    worker, _, worker_argv = found[worker_name]
    assert "--master" in master_argv and "--worker" in worker_argv
    assert option(master_argv, "--master-bind") == "0.0.0.0"  # reachable from other pods
    port = int(option(master_argv, "--master-port") or 5557)
    (container,) = master_pod["containers"]
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port in container_ports.values()

    service = named("Service", option(worker_argv, "--master-host") or "")
    selector = service["spec"]["selector"]
    labels = master["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items(), "the Service selects the master's pod"
    (service_port,) = service["spec"]["ports"]
    assert service_port["port"] == port == int(option(worker_argv, "--master-port") or 5557)
    assert container_ports[service_port["targetPort"]] == port

    workers = int(option(master_argv, "--expect-workers") or 0)
    spec = worker["spec"]
    if worker["kind"] == "Deployment":
        assert spec["replicas"] == workers
        assert master["spec"]["replicas"] == 1
    else:
        assert spec["parallelism"] == spec["completions"] == workers
        assert master["spec"]["backoffLimit"] == 0
    assert plan_part(master_argv) == plan_part(worker_argv), "same scenario, host and plan"


@pytest.mark.parametrize("name", [n for pair in PAIRS for n in pair])
def test_scenario_and_wheel_are_mounted_where_the_command_looks(name: str) -> None:
    _, pod, argv = runs()[name]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    scenario = Path(argv[0])
    config_map = volumes[mounts[str(scenario.parent)]]["configMap"]["name"]
    assert scenario.name in named("ConfigMap", config_map)["data"]
    wheel = Path(plan_env()["BREAKPOINT_PACKAGE"])
    assert volumes[mounts[str(wheel.parent)]]["configMap"]["name"] == "breakpoint-wheel"
    assert container["image"].startswith("python:3.")
    assert "$BREAKPOINT_PACKAGE" in " ".join(container["args"])


def test_the_wheel_name_matches_this_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wheel = Path(plan_env()["BREAKPOINT_PACKAGE"]).name
    assert wheel == f"{project['name'].replace('-', '_')}-{project['version']}-py3-none-any.whl"


def test_the_profiles_exist_and_the_scenario_copy_is_the_repository_s() -> None:
    assert resolve_profiles(plan_env()["PROFILES"].split(","))
    data = named("ConfigMap", "breakpoint-scenario")["data"]
    assert data["shop.py"] == (ROOT / "scenarios" / "shop.py").read_text(encoding="utf-8")


def test_the_configmap_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(DEPLOY / "make-configmaps.sh")], check=True)
