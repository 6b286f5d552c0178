"""docker-compose.yml is consistent: no Docker engine runs here, so check what it names exists.

Checks: services and profiles, a pinned ClickHouse image, health checks, ports, that every bind
mount's host path exists in the repository, and that the API points at ClickHouse.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # repository files, not untrusted input
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def test_services_and_profiles(compose: dict[str, Any]) -> None:
    svc = services(compose)
    default = {name for name, s in svc.items() if not s.get("profiles")}
    cluster = {name for name, s in svc.items() if "cluster" in s.get("profiles", [])}
    assert default == {"clickhouse", "govtrack"}
    assert cluster == {"keeper", "ch-replica-1", "ch-replica-2", "govtrack-cluster"}


def test_clickhouse_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, s in services(compose).items():
        if "image" in s:
            assert re.fullmatch(r"clickhouse/clickhouse-server:\d+\.\d+\.\d+\.\d+", s["image"]), name


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, s in services(compose).items():
        check = s.get("healthcheck")
        assert check, name
        assert check.get("test"), name


def test_ports(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert "8123:8123" in svc["clickhouse"]["ports"]
    assert "8000:8000" in svc["govtrack"]["ports"]
    published = [p.split(":")[0] for s in svc.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published))


def test_bind_mounts_exist(compose: dict[str, Any]) -> None:
    mounts = [v for s in services(compose).values() for v in s.get("volumes", []) if v.startswith("./")]
    assert mounts
    for mount in mounts:
        host = ROOT / mount.split(":")[0]
        assert host.exists(), mount
        if host.suffix == ".xml":
            ET.parse(host)  # noqa: S314  (our own config files: well-formed)
    assert any(m.startswith("./ddl/clickhouse/cluster:") for m in mounts)


def test_api_services_point_at_clickhouse(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name, target in (("govtrack", "clickhouse"), ("govtrack-cluster", "ch-replica-1")):
        s = svc[name]
        assert s["build"] == "."
        assert s["command"] == ["govtrack", "serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
        env = s["environment"]
        assert re.match(rf"http://\w+:\w+@{target}:8123/govtrack", env["GOVTRACK_STORE_URL"])
        assert env["GOVTRACK_ALLOW_UNAUTHENTICATED_BIND"] == "true"
        assert env["GOVTRACK_CURSOR_SECRET"], "replicas must share the cursor key"
        assert s["depends_on"][target]["condition"] == "service_healthy"
    assert svc["govtrack-cluster"]["environment"]["GOVTRACK_STORE_URL"].endswith("?ddl=cluster")


def test_dockerfile_is_multistage_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users
    assert users[-1] not in ("root", "0")
    assert "COPY ddl" in text


def test_cluster_macros_match_replicas() -> None:
    for i in (1, 2):
        root = ET.parse(ROOT / f"deploy/clickhouse/cluster/macros-{i}.xml").getroot()  # noqa: S314
        assert root.findtext("macros/replica") == f"ch-replica-{i}"
        assert root.findtext("macros/cluster") == "govtrack"
    cluster = ET.parse(ROOT / "deploy/clickhouse/cluster/cluster.xml").getroot()  # noqa: S314
    hosts = [h.text for h in cluster.iter("host")]
    assert {"ch-replica-1", "ch-replica-2", "keeper"} <= set(hosts)
