"""docker-compose.yml and the Dockerfile agree with config.env and with the code.

No Docker engine is needed: `docker-compose config` validates the file and prints it
with every variable interpolated and every env_file applied (Debian's docker-compose
1.29; .ci/run installs it). The printed YAML is read with `Block` (older tests, written
when PyYAML was not a dependency) or PyYAML. The compose-spec JSON schema checks the
file as `docker compose` v2 reads it.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from itertools import takewhile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
import yaml

from common.config import split_urls
from common.partitioning import parse_partition_spec
from tests.helpers import installed_tool
from tests.test_settings import CODE_SECTION, IMAGES_SECTION, config_env_sections

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# What an app container may run, and the file that must exist for it to work.
APP_COMMANDS = {
    ("python", "-m", "api"): "api/__main__.py",
    ("python", "-m", "worker"): "worker/__main__.py",
    ("python", "-m", "worker.cleaner"): "worker/cleaner/__main__.py",
    ("alembic", "upgrade", "head"): "alembic.ini",
}
API, WORKER, CLEANER, MIGRATE = APP_COMMANDS
WORKER_METRICS_PORT, CLEANER_METRICS_PORT = 9101, 9100  # METRICS_PORT empty in config.env: the processes' defaults
LONG_RUNNING = (API, WORKER, CLEANER)


# -- Reading what `docker-compose config` prints


class Block:
    """A YAML block as `docker-compose config` prints it: 2-space indents, lists not indented under their key."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def get(self, key: str) -> Block | None:
        for index, line in enumerate(self.lines):
            if line == f"{key}:":
                body = list(takewhile(lambda nested: nested.startswith(("  ", "- ")), self.lines[index + 1 :]))
                indented = bool(body) and body[0].startswith("  ")
                return Block([nested[2:] if indented else nested for nested in body])
        return None

    def __getitem__(self, key: str) -> Block:
        block = self.get(key)
        assert block is not None, f"no {key!r} in:\n" + "\n".join(self.lines)
        return block

    def scalar(self, key: str) -> str | None:
        prefix = f"{key}: "
        return next((_unquote(line[len(prefix) :]) for line in self.lines if line.startswith(prefix)), None)

    def keys(self) -> list[str]:
        return [line.split(":", 1)[0] for line in self.lines if line[:1] not in ("", " ", "-") and ":" in line]

    def mapping(self) -> dict[str, str]:
        pairs = (line.split(": ", 1) for line in self.lines if line[:1] not in ("", " ", "-") and ": " in line)
        return {key: _unquote(value) for key, value in pairs}

    def items(self) -> list[Block]:
        items: list[list[str]] = []
        for line in self.lines:
            if line.startswith("- "):
                items.append([line[2:]])
            elif items:
                items[-1].append(line[2:])
        return [Block(item) for item in items]

    def values(self) -> list[str]:
        return [_unquote(item.lines[0]) for item in self.items()]


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return json.loads(raw)
    return raw


# -- Fixtures


@cache
def _config_env() -> dict[str, dict[str, str]]:
    return config_env_sections()


def _code_env() -> dict[str, str]:
    return _config_env()[CODE_SECTION]


def _image_env() -> dict[str, str]:
    return _config_env()[IMAGES_SECTION]


@pytest.fixture(scope="module")
def compose() -> str:
    return installed_tool("docker-compose", "docker-compose")


def _run_compose(compose: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Interpolation must see config.env (through .env) only, not whatever this shell exports.
    names = {name for section in _config_env().values() for name in section}
    env = {key: value for key, value in os.environ.items() if key not in names and not key.startswith("COMPOSE_")}
    return subprocess.run(
        [compose, "-f", "docker-compose.yml", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def rendered(compose: str) -> dict:
    """`docker-compose config` (every variable and env_file applied), read as YAML."""
    result = _run_compose(compose, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def services(compose: str) -> dict[str, Block]:
    listed = _run_compose(compose, "config", "--services")
    assert listed.returncode == 0, listed.stderr
    rendered = _run_compose(compose, "config")
    assert rendered.returncode == 0, rendered.stderr
    top = Block(rendered.stdout.splitlines())
    return {name: top["services"][name] for name in listed.stdout.split()}


def _port(entry: str | dict) -> tuple[str, int, int]:
    """(host ip, published, target) of a port as docker-compose config prints it, short or long syntax."""
    if isinstance(entry, dict):
        return entry.get("host_ip", "0.0.0.0"), int(entry["published"]), int(entry["target"])
    parts = entry.split("/")[0].split(":")
    host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
    return host_ip, int(parts[-2]), int(parts[-1])


def _mount(entry: str | dict) -> tuple[str, str]:
    """(target, source) of a volume, short or long syntax."""
    if isinstance(entry, dict):
        return entry["target"], entry.get("source", "")
    source, target = entry.split(":")[:2]
    return target, source


def _command(service: Block) -> tuple[str, ...]:
    command = service.get("command")
    return tuple(command.values()) if command is not None else ()


def _app_services(services: dict[str, Block]) -> dict[str, Block]:
    """The services built from this repository's Dockerfile (not docker/postgres's)."""
    return {name: service for name, service in services.items() if service.scalar("image") == "pageviews:local"}


def _running(services: dict[str, Block], command: tuple[str, ...]) -> dict[str, Block]:
    return {name: service for name, service in _app_services(services).items() if _command(service) == command}


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert parts and "".join(number + unit for number, unit in parts) == duration, f"unreadable duration {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


# -- docker-compose.yml


def test_compose_file_is_valid_and_quiet(compose: str) -> None:
    result = _run_compose(compose, "config", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == "", f"warnings from docker-compose config -q:\n{result.stdout}{result.stderr}"


def test_dot_env_is_a_link_to_config_env() -> None:
    """Compose interpolates ${...} from .env; as a link, config.env stays the one source of the credentials."""
    dot_env = ROOT / ".env"
    assert dot_env.is_symlink(), ".env must be a symbolic link to config.env"
    assert os.readlink(dot_env) == "config.env", f".env points at {os.readlink(dot_env)!r}, not config.env"


def test_all_services_are_there(services: dict[str, Block]) -> None:
    missing = {"rabbitmq", "postgres", "migrate", "api", "cleaner"} - set(services)
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"
    assert len(_running(services, WORKER)) >= 2, "at least two worker services, to show scaling out across containers"
    assert _command(services["migrate"]) == MIGRATE
    assert _command(services["api"]) == API
    assert _command(services["cleaner"]) == CLEANER


def test_workers_split_the_partitions_between_them(services: dict[str, Block]) -> None:
    num_partitions = int(_code_env()["NUM_PARTITIONS"])
    owner: dict[int, str] = {}
    for name, worker in sorted(_running(services, WORKER).items()):
        spec = worker["environment"].scalar("WORKER_PARTITIONS")
        assert spec is not None, f"{name}: no WORKER_PARTITIONS"
        for partition in parse_partition_spec(spec, num_partitions):
            assert partition not in owner, f"partition {partition} is consumed by both {owner[partition]} and {name}"
            owner[partition] = name
    uncovered = sorted(set(range(num_partitions)) - set(owner))
    assert not uncovered, f"partitions no worker service consumes (NUM_PARTITIONS={num_partitions}): {uncovered}"


def test_app_services_run_a_known_command(services: dict[str, Block]) -> None:
    for name, service in _app_services(services).items():
        command = _command(service)
        assert command in APP_COMMANDS, f"{name}: command {' '.join(command)!r} is not one of {[' '.join(c) for c in APP_COMMANDS]}"
        needed = ROOT / APP_COMMANDS[command]
        assert needed.exists(), f"{name} runs {' '.join(command)!r} but {APP_COMMANDS[command]} does not exist"
    assert (ROOT / "migrations" / "env.py").exists()


def test_app_services_read_config_env_and_override_only_the_urls(services: dict[str, Block]) -> None:
    may_differ = {"DATABASE_URL", "AMQP_URL"}
    for name, service in _app_services(services).items():
        environment = service["environment"].mapping()
        missing = sorted(set(_code_env()) - set(environment))
        assert not missing, f"{name}: settings not passed to the container (env_file: config.env?): {missing}"
        allowed = may_differ | ({"WORKER_PARTITIONS"} if _command(service) == WORKER else set())
        changed = sorted(key for key, value in _code_env().items() if environment[key] != value and key not in allowed)
        assert not changed, f"{name}: overrides config.env for {changed}; only {sorted(allowed)} should differ in containers"


def test_urls_point_at_the_services_with_the_config_env_credentials(services: dict[str, Block]) -> None:
    images = _image_env()
    for name, service in _app_services(services).items():
        environment = service["environment"].mapping()
        database = urlsplit(environment["DATABASE_URL"])
        assert (database.scheme, database.hostname, database.port) == ("postgresql", "postgres", 5432), f"{name}: {database.geturl()}"
        assert (unquote(database.username or ""), unquote(database.password or ""), database.path) == (
            images["POSTGRES_USER"],
            images["POSTGRES_PASSWORD"],
            f"/{images['POSTGRES_DB']}",
        ), f"{name}: DATABASE_URL does not use POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB from config.env"
        brokers = [urlsplit(url) for url in split_urls(environment["AMQP_URL"])]
        assert brokers[0].hostname == "rabbitmq", f"{name}: the first AMQP_URL should be the rabbitmq service: {environment['AMQP_URL']}"
        for broker in brokers:
            where = (broker.scheme, broker.port, broker.path)
            assert where == ("amqp", 5672, "/%2F") and broker.hostname in services, f"{name}: {broker.geturl()} is not a broker service"
            assert (services[broker.hostname].scalar("image") or "").startswith("rabbitmq:"), f"{name}: {broker.hostname} is not a RabbitMQ service"
            assert (unquote(broker.username or ""), unquote(broker.password or "")) == (
                images["RABBITMQ_DEFAULT_USER"],
                images["RABBITMQ_DEFAULT_PASS"],
            ), f"{name}: AMQP_URL does not use RABBITMQ_DEFAULT_USER/RABBITMQ_DEFAULT_PASS from config.env"


def test_broker_and_database_take_their_credentials_from_config_env(services: dict[str, Block]) -> None:
    images = _image_env()
    assert images["RABBITMQ_DEFAULT_USER"] != "guest", "the compose broker should not use guest (it only logs in from localhost)"
    rabbitmq = services["rabbitmq"]["environment"].mapping()
    assert {key: rabbitmq.get(key) for key in ("RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS")} == {
        key: images[key] for key in ("RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS")
    }
    postgres = services["postgres"]["environment"].mapping()
    assert {key: postgres.get(key) for key in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")} == {
        key: images[key] for key in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
    }


def test_api_publishes_the_configured_port(services: dict[str, Block]) -> None:
    port = _code_env()["PORT"]
    ports = services["api"]["ports"].items()
    published = []
    for item in ports:
        mapping = item.mapping()
        published.append((mapping["published"], mapping["target"]) if mapping else tuple(_unquote(item.lines[0]).rsplit(":", 2)[-2:]))
    assert (port, port) in published, f"api should publish {port}:{port} (PORT in config.env), has {published}"


def test_start_order(services: dict[str, Block]) -> None:
    def conditions(name: str) -> dict[str, str | None]:
        depends_on = services[name]["depends_on"]
        return {dependency: depends_on[dependency].scalar("condition") for dependency in depends_on.keys()}  # noqa: SIM118 - a Block, not a dict

    assert conditions("migrate").get("postgres") == "service_healthy"
    for name, service in _app_services(services).items():
        if _command(service) == MIGRATE:
            continue
        chosen = conditions(name)
        assert chosen.get("migrate") == "service_completed_successfully", f"{name}: must wait for the migrations"
        assert chosen.get("postgres") == "service_healthy", f"{name}: must wait for a healthy postgres"
        if _command(service) in (API, WORKER):
            assert chosen.get("rabbitmq") == "service_healthy", f"{name}: must wait for a healthy rabbitmq"


def test_restart_and_graceful_stop(services: dict[str, Block]) -> None:
    assert services["migrate"].scalar("restart") == "no"
    for name, service in _app_services(services).items():
        if _command(service) not in LONG_RUNNING:
            continue
        assert service.scalar("restart") == "unless-stopped", f"{name}: restart"
        assert service.scalar("stop_signal") in (None, "SIGTERM"), f"{name}: SIGTERM is what flushes and acknowledges"
        # gunicorn's graceful_timeout is 20 s; a worker flushes a batch and acknowledges.
        grace = _seconds(service.scalar("stop_grace_period") or "10s")
        assert grace >= 30, f"{name}: stop_grace_period {grace:g}s leaves too little time to finish in-flight work"


def test_healthchecks_api_by_health_workers_and_cleaner_by_their_metrics_endpoint(rendered: dict) -> None:
    """The image's HEALTHCHECK probes the API's port; workers and the cleaner probe their own metrics port; migrate has none."""
    services = rendered["services"]
    for name, service in services.items():
        if service.get("image") != "pageviews:local":  # built from this repository's Dockerfile
            continue
        command = tuple(service.get("command", ()))
        test = service.get("healthcheck", {}).get("test")
        probe = " ".join(test or [])
        if command == API:
            assert test is None or "/health" in probe, f"{name}: healthcheck {test}"
        elif command == WORKER:
            assert f"127.0.0.1:{WORKER_METRICS_PORT}/metrics" in probe, f"{name}: should probe its metrics endpoint, has {test}"
        elif command == CLEANER:
            assert f"127.0.0.1:{CLEANER_METRICS_PORT}/metrics" in probe, f"{name}: should probe its metrics endpoint, has {test}"
        else:
            assert test == ["NONE"], f"{name}: should disable the image's API healthcheck (healthcheck: disable: true)"


def test_only_the_api_and_the_metrics_endpoint_face_the_network(rendered: dict) -> None:
    """AMQP, the management UI and PostgreSQL on 127.0.0.1 only; RabbitMQ's metrics port for Prometheus; the API on PORT."""
    def published(name: str) -> dict[int, str]:
        return {target: host_ip for host_ip, _published, target in map(_port, rendered["services"][name].get("ports", []))}

    rabbitmq, postgres = published("rabbitmq"), published("postgres")
    assert rabbitmq.get(5672) == "127.0.0.1" and rabbitmq.get(15672) == "127.0.0.1", f"rabbitmq: {rabbitmq}"
    assert 15692 in rabbitmq, "rabbitmq_prometheus (15692) should be published for Prometheus"
    assert postgres == {5432: "127.0.0.1"}, f"postgres: {postgres}"
    port = int(_code_env()["PORT"])
    api_ports = [(published, target) for _host_ip, published, target in map(_port, rendered["services"]["api"]["ports"])]
    assert api_ports == [(port, port)], f"api should publish PORT ({port}), has {api_ports}"
    compose_text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "${PORT" in compose_text, "the API's published port should follow PORT (${PORT...}), not repeat its value"


def test_rabbitmq_enables_its_prometheus_plugin(rendered: dict) -> None:
    mounts = dict(map(_mount, rendered["services"]["rabbitmq"]["volumes"]))
    source = mounts.get("/etc/rabbitmq/enabled_plugins")
    assert source, "mount an enabled_plugins file on /etc/rabbitmq/enabled_plugins"
    plugins = Path(source).read_text(encoding="utf-8")
    assert "rabbitmq_prometheus" in plugins and "rabbitmq_management" in plugins, plugins


def test_observability_and_cluster_profiles_add_their_services_only(rendered: dict) -> None:
    profiled = {name: service["profiles"] for name, service in rendered["services"].items() if "profiles" in service}
    expected = {"prometheus": ["observability"], "grafana": ["observability"], "rabbitmq-2": ["cluster"], "rabbitmq-3": ["cluster"]}
    assert profiled == expected, profiled


def test_compose_file_follows_the_compose_specification() -> None:
    """What `docker compose` (v2) reads: the file against the compose-spec JSON schema (tests/compose-spec/README.md)."""
    schema = json.loads((ROOT / "tests" / "compose-spec" / "compose-spec.json").read_text(encoding="utf-8"))
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors)


def test_broker_and_database_keep_their_data_and_report_health(services: dict[str, Block]) -> None:
    rabbitmq, postgres = services["rabbitmq"], services["postgres"]
    # RabbitMQ stores its data under rabbit@<hostname>; a new container must have the same name.
    assert rabbitmq.scalar("hostname"), "rabbitmq needs a fixed hostname to find its data in the volume"
    for service, path in ((rabbitmq, "/var/lib/rabbitmq"), (postgres, "/var/lib/postgresql/data")):
        mounts = [volume.split(":") for volume in service["volumes"].values()]
        assert any(mount[1:2] == [path] and not mount[0].startswith(("/", ".")) for mount in mounts), f"no named volume on {path}: {mounts}"
        assert service["healthcheck"]["test"].values(), "needs a healthcheck (others wait for service_healthy)"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"].values())
    assert "rabbitmq-diagnostics" in " ".join(rabbitmq["healthcheck"]["test"].values())
    assert "management" in (rabbitmq.scalar("image") or ""), "the management plugin (port 15672) helps to inspect the queues"


def _is_pinned(image: str) -> bool:
    name, _, digest = image.partition("@")
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    return bool(digest) or (bool(tag) and tag != "latest")


def test_every_image_is_pinned_to_a_tag(services: dict[str, Block]) -> None:
    images = {name: service.scalar("image") for name, service in services.items()}
    images.update({f"Dockerfile FROM {index}": line.split()[0] for index, line in enumerate(_instructions_named("FROM"))})
    loose = {name: image for name, image in images.items() if image is None or not _is_pinned(image)}
    # A built service without an image name gets an untagged project_service name.
    assert not loose, f"images without a tag, or tagged latest: {loose}"


# -- Dockerfile


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = (line.strip() for line in text.splitlines())
    return [(word.upper(), rest.strip()) for word, _, rest in (line.partition(" ") for line in lines if line and not line.startswith("#"))]


def _instructions_named(name: str) -> list[str]:
    return [rest for word, rest in _instructions() if word == name]


def test_dockerfile_base_image() -> None:
    bases = _instructions_named("FROM")
    assert bases and re.fullmatch(r"python:3\.11-slim(-\w+)?", bases[-1].split()[0]), f"final stage should be python:3.11-slim*, is {bases}"


def test_dockerfile_runs_as_a_user_that_is_not_root() -> None:
    users = _instructions_named("USER")
    assert users, "no USER: the containers would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), f"USER {users[-1]}"


def test_dockerfile_has_an_api_healthcheck() -> None:
    healthchecks = _instructions_named("HEALTHCHECK")
    assert healthchecks and "NONE" not in healthchecks[-1].split(), "no HEALTHCHECK"
    assert "/health" in healthchecks[-1] and "PORT" in healthchecks[-1], healthchecks[-1]


def test_dockerfile_installs_pinned_requirements_before_the_source() -> None:
    steps = _instructions()
    copies = [(index, rest) for index, (word, rest) in enumerate(steps) if word == "COPY"]
    install = re.compile(r"pip install .*-r requirements\.txt")
    installs = [index for index, (word, rest) in enumerate(steps) if word == "RUN" and install.search(rest)]
    assert installs, "no `pip install -r requirements.txt`"
    assert "--no-cache-dir" in steps[installs[0]][1], "pip should not leave its cache in the image"
    requirements = [index for index, rest in copies if rest.split()[:-1] == ["requirements.txt"]]
    source = [index for index, rest in copies if index not in requirements]
    assert requirements and requirements[0] < installs[0], "COPY requirements.txt alone, then install, for a cached dependency layer"
    assert source and installs[0] < min(source), "the source must be copied after the dependencies are installed"
    requirements_txt = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    unpinned = [line for line in requirements_txt if line.strip() and not line.startswith("#") and "==" not in line]
    assert not unpinned, f"requirements.txt entries without an exact pin: {unpinned}"


def test_dockerfile_copies_what_runs_and_nothing_else() -> None:
    copied = {source.rstrip("/") for rest in _instructions_named("COPY") for source in rest.split()[:-1] if not source.startswith("--")}
    needed = {"api", "worker", "common", "migrations", "alembic.ini", "requirements.txt"}
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"
    assert not copied & {".", "tests", ".venv", "bench"}, f"copies more than what runs: {sorted(copied)}"
    ignore = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    if "*" in ignore:  # an allow-list: whatever is copied must be let through
        blocked = sorted(source for source in copied if f"!{source}" not in ignore and f"!{source}/" not in ignore)
        assert not blocked, f".dockerignore keeps out what the Dockerfile copies: {blocked}"
    else:
        assert {".venv", ".git", "tests"} <= set(ignore), ".dockerignore should keep .venv, .git and tests out of the build context"


def test_dockerfile_environment_port_and_default_command() -> None:
    environment = " ".join(_instructions_named("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in environment and "PYTHONUNBUFFERED=1" in environment
    assert _instructions_named("WORKDIR")[-1] == "/app"
    assert _code_env()["PORT"] in " ".join(_instructions_named("EXPOSE")).split(), "EXPOSE should be PORT from config.env"
    assert json.loads(_instructions_named("CMD")[-1]) == list(API)


def test_the_cluster_profile_runs_three_rabbitmq_nodes_with_one_cookie(services: dict[str, Block]) -> None:
    nodes = {name: service for name, service in services.items() if (service.scalar("image") or "").startswith("rabbitmq:")}
    assert sorted(nodes) == ["rabbitmq", "rabbitmq-2", "rabbitmq-3"], sorted(nodes)
    cookies = {name: node["environment"].scalar("RABBITMQ_ERLANG_COOKIE") for name, node in nodes.items()}
    assert len(set(cookies.values())) == 1 and None not in cookies.values(), f"the nodes must share one Erlang cookie: {cookies}"
    for name in ("rabbitmq-2", "rabbitmq-3"):
        node = nodes[name]
        assert node["profiles"].values() == ["cluster"], f"{name} belongs to the cluster profile only"
        assert node.scalar("hostname") == name, f"{name}: its node name rabbit@{name} must stay the same across restarts"
        assert any(":/var/lib/rabbitmq" in volume and not volume.startswith(("/", ".")) for volume in node["volumes"].values()), f"{name}: no named data volume"
        config = [volume for volume in node["volumes"].values() if volume.endswith("/etc/rabbitmq/conf.d/20-cluster.conf:ro")]
        assert config, f"{name}: needs docker/rabbitmq/cluster.conf to join the rabbitmq service"
    assert "rabbit@rabbitmq" in (ROOT / "docker" / "rabbitmq" / "cluster.conf").read_text(encoding="utf-8")
