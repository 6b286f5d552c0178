"""docker-compose.yml is consistent and closed: no Docker engine runs here, so check the file.

Checks: services and profiles, a pinned ClickHouse image on the embedded engine's release line,
health checks, ports, that every bind mount's host path exists in the repository, and that the API
points at ClickHouse. Security (issue 8.8): every secret (API keys, cursor secret, ClickHouse
password) comes from the env file through `${VAR:?message}` with no default, no unauthenticated
bind, ClickHouse access management off, ports published on 127.0.0.1 only, `.env.example` names
every variable the file needs and `.env` is never committed or copied into the image.
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


def test_clickhouse_image_is_pinned_on_the_embedded_engines_release_line(compose: dict[str, Any]) -> None:
    import chdb

    engine = tuple(chdb.engine_version.split(".")[:2])  # the tests run this engine (chdb-core)
    for name, s in services(compose).items():
        if "image" in s:
            found = re.fullmatch(r"clickhouse/clickhouse-server:(\d+)\.(\d+)\.\d+\.\d+", s["image"])
            assert found, name
            assert found.groups() == engine, f"{name}: {s['image']} is not on the {'.'.join(engine)} line"


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, s in services(compose).items():
        check = s.get("healthcheck")
        assert check, name
        assert check.get("test"), name


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert "127.0.0.1:8123:8123" in svc["clickhouse"]["ports"]
    assert "127.0.0.1:8000:8000" in svc["govtrack"]["ports"]
    for name, s in svc.items():
        for port in s.get("ports", []):
            assert isinstance(port, str), (
                f"{name}: long-form port {port!r}: write host_ip explicitly as a string"
            )
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port!r} beyond loopback"
            assert port.count(":") == 2, f"{name} publishes {port!r}"
    published = [p.split(":")[1] for s in svc.values() for p in s.get("ports", [])]
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


def required(var: str) -> str:
    """`${VAR:?message}`: compose refuses to start, saying why, when the env file lacks VAR."""
    return rf"\$\{{{var}:\?[^}}]+\}}"


def test_api_services_point_at_clickhouse(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name, target in (("govtrack", "clickhouse"), ("govtrack-cluster", "ch-replica-1")):
        s = svc[name]
        assert s["build"] == "."
        # inside its container network; with keys required (below) the CLI allows this bind
        assert s["command"] == ["govtrack", "serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
        env = s["environment"]
        url = rf"http://govtrack:{required('CLICKHOUSE_PASSWORD')}@{target}:8123/govtrack"
        assert re.fullmatch(url + r"(\?ddl=cluster)?", env["GOVTRACK_STORE_URL"]), name
        assert s["depends_on"][target]["condition"] == "service_healthy"
    assert svc["govtrack-cluster"]["environment"]["GOVTRACK_STORE_URL"].endswith("?ddl=cluster")


def test_api_needs_keys_and_a_cursor_secret_from_the_env_file(compose: dict[str, Any]) -> None:
    for name in ("govtrack", "govtrack-cluster"):
        env = services(compose)[name]["environment"]
        assert "GOVTRACK_ALLOW_UNAUTHENTICATED_BIND" not in env, name
        assert re.fullmatch(required("GOVTRACK_API_KEYS"), env["GOVTRACK_API_KEYS"]), name
        # shared by every replica, so a cursor issued by one is honoured by all; never a default
        assert re.fullmatch(required("GOVTRACK_CURSOR_SECRET"), env["GOVTRACK_CURSOR_SECRET"]), name


def test_clickhouse_password_from_the_env_file_and_access_management_off(compose: dict[str, Any]) -> None:
    servers = [
        s for s in services(compose).values() if "image" in s and "keeper" not in s.get("entrypoint", [])
    ]
    assert len(servers) == 3
    for s in servers:
        env = s["environment"]
        assert env["CLICKHOUSE_USER"] == "govtrack"
        assert re.fullmatch(required("CLICKHOUSE_PASSWORD"), env["CLICKHOUSE_PASSWORD"])
        assert str(env["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"]) == "0"


def test_no_secret_has_a_default_or_a_literal_value() -> None:
    """Nothing secret is written in the compose file or the ClickHouse configs it mounts."""
    text = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"\$\{[A-Z_]*(KEY|SECRET|PASSWORD)[A-Z_]*:?-", text), "a secret has a default"
    assert "ALLOW_UNAUTHENTICATED_BIND" not in text
    assert "change-me" not in text
    assert not re.search(r"(?i)password\W+govtrack\b", text)
    assert not re.search(r"govtrack:govtrack@", text)
    for path in (ROOT / "deploy").rglob("*.xml"):
        root = ET.parse(path).getroot()  # noqa: S314  (our own config files)
        for element in root.iter("password"):
            assert not (element.text or "").strip(), f"{path}: literal password"
            assert element.get("from_env") == "CLICKHOUSE_PASSWORD", path


def test_env_example_names_every_variable_and_env_stays_private(compose: dict[str, Any]) -> None:
    needed = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text(encoding="utf-8")))
    assert {"GOVTRACK_API_KEYS", "GOVTRACK_CURSOR_SECRET", "CLICKHOUSE_PASSWORD"} <= needed
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assigned = dict(re.findall(r"^(\w+)=(.*)$", example, re.M))
    assert needed <= set(assigned), needed - set(assigned)
    assert all(not assigned[v] for v in needed), "the example holds no usable secret"
    assert "govtrack keys new --scopes" in example
    for ignore in (".gitignore", ".dockerignore"):
        lines = (ROOT / ignore).read_text(encoding="utf-8").split()
        assert ".env" in lines or "/.env" in lines, ignore


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
