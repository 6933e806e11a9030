"""docker-compose.yml, Dockerfile and deploy/ checked without a Docker engine.

The compose stack cannot run here, so these tests check what would make it fail at
``docker compose up``: a service command the CLI does not have, a config file that is not
mounted or does not load, a host name that is not a compose service, a dependency on a
health check that does not exist, or an image build that would not install the project.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import click
import pytest
import yaml
from click.testing import CliRunner

from analytics.command import cache_path
from cli.config import LoadedConfig, load_config
from cli.main import cli
from simulators.press import PRESS_TAGS

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
MOSQUITTO_CONF = REPO / "deploy" / "mosquitto.conf"
COMPOSE_CONFIG = REPO / "deploy" / "smartfactory.compose.yaml"

PROJECT_SERVICES = ("simulator", "gateway", "collector", "api")
EXPECTED_SERVICES = {"mosquitto", "influxdb", *PROJECT_SERVICES}
SIMULATOR_PORTS = [5020, 5021, 5022]

#: Config sections each subcommand reads. They must be written out in the file: the
#: defaults (mqtt://127.0.0.1, a local SQLite file, api on 127.0.0.1) are wrong in a container.
SECTIONS_NEEDED = {
    ("simulate",): {"simulator"},
    ("gateway", "run"): {"gateway", "mqtt"},
    ("gateway", "plan"): {"gateway"},
    ("collector",): {"collector", "mqtt", "store"},
    ("api",): {"api", "store", "analytics"},
}


# ---- helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "docker-compose.yml has no services mapping"
    return data


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture
def keep_logging():
    """``cli`` reconfigures the root logger; put pytest's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def uses_project_image(service: dict) -> bool:
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    return context in (".", "./")


def service(services: dict, name: str) -> dict:
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def command_of(svc: dict) -> list[str]:
    cmd = svc.get("command")
    assert cmd is not None, "service has no command"
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def split_command(cmd: list[str]) -> tuple[tuple[str, ...], str | None, list[str]]:
    """(subcommand path, --config value, other args) of ``smartfactory ...``."""
    args = cmd[1:]
    path: list[str] = []
    group: click.Command = cli
    while args and isinstance(group, click.Group) and args[0] in group.commands:
        path.append(args[0])
        group = group.commands[args[0]]
        args = args[1:]
    config, rest, i = None, [], 0
    while i < len(args):
        a = args[i]
        if a in ("--config", "-c"):
            config = args[i + 1] if i + 1 < len(args) else None
            i += 2
            continue
        if a.startswith("--config="):
            config = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    return tuple(path), config, rest


def click_command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = cli
    for name in path:
        assert isinstance(cmd, click.Group), f"{cmd.name} has no subcommands"
        cmd = cmd.commands[name]
    return cmd


def parse_mount(entry) -> dict:
    """A service volume, short (src:dst[:mode]) or long syntax, as {source, target, read_only}."""
    if isinstance(entry, dict):
        return {"source": entry.get("source"), "target": entry["target"], "read_only": bool(entry.get("read_only"))}
    parts = entry.split(":")
    if len(parts) == 1:
        return {"source": None, "target": parts[0], "read_only": False}
    mode = parts[2] if len(parts) > 2 else ""
    return {"source": parts[0], "target": parts[1], "read_only": "ro" in mode.split(",")}


def mounts(svc: dict) -> list[dict]:
    return [parse_mount(v) for v in svc.get("volumes", [])]


def is_bind(source: str | None) -> bool:
    return bool(source) and source.startswith((".", "/", "~"))


def host_path_for(svc: dict, container_path: str) -> tuple[Path, dict]:
    """The repo file a bind mount puts at container_path (the file itself or a parent dir)."""
    target = PurePosixPath(container_path)
    for m in mounts(svc):
        mount_target = PurePosixPath(m["target"])
        if is_bind(m["source"]) and (target == mount_target or mount_target in target.parents):
            return (COMPOSE_FILE.parent / m["source"] / target.relative_to(mount_target)).resolve(), m
    pytest.fail(f"no bind mount provides {container_path} (volumes: {svc.get('volumes')})")


def raw_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def service_config(svc: dict) -> tuple[tuple[str, ...], Path, LoadedConfig]:
    path, config_path, _ = split_command(command_of(svc))
    assert config_path, f"command {command_of(svc)} does not pass --config"
    repo_path, _ = host_path_for(svc, config_path)
    return path, repo_path, load_config(repo_path)


def url_host(url: str) -> str:
    return urlsplit(url).hostname


def depends_on(svc: dict) -> dict[str, str]:
    deps = svc.get("depends_on", {})
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def healthcheck_text(svc: dict) -> str:
    test = svc.get("healthcheck", {}).get("test")
    return " ".join(test) if isinstance(test, list) else str(test or "")


def container_ports(svc: dict) -> set[int]:
    out = set()
    for p in svc.get("ports", []):
        if isinstance(p, dict):
            out.add(int(p["target"]))
        else:
            out.add(int(str(p).split("/")[0].rsplit(":", 1)[-1]))
    return out


def service_with_image(services: dict, prefix: str) -> set[str]:
    return {name for name, s in services.items() if str(s.get("image", "")).startswith(prefix)}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    assert DOCKERFILE.is_file(), "Dockerfile is missing"
    out, buf = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in dockerfile_instructions():
        if ins[0] == "FROM":
            stages.append([])
        assert stages, "the Dockerfile must start with FROM"
        stages[-1].append(ins)
    return stages


def dockerignore_patterns() -> list[str]:
    if not DOCKERIGNORE.is_file():
        return []
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _segments_match(path: list[str], pattern: list[str]) -> bool:
    if not pattern:
        return not path
    if pattern[0] == "**":
        return any(_segments_match(path[i:], pattern[1:]) for i in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], pattern[0]) and _segments_match(path[1:], pattern[1:])


def dockerignored(rel: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a match on a parent dir excludes its files."""
    parts = rel.strip("/").split("/")
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat_parts = [p for p in pat.strip().strip("/").split("/") if p]
        if any(_segments_match(parts[:n], pat_parts) for n in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


# ---- services ---------------------------------------------------------------------------


def test_expected_services_exist(services):
    missing = EXPECTED_SERVICES - set(services)
    assert not missing, f"docker-compose.yml lacks services: {sorted(missing)}"


def test_project_services_are_built_from_the_dockerfile(services):
    built = {name for name, s in services.items() if uses_project_image(s)}
    assert built == set(PROJECT_SERVICES), f"services with build: . are {sorted(built)}"


def test_third_party_images(services):
    assert service(services, "mosquitto").get("image") == "eclipse-mosquitto:2"
    assert service(services, "influxdb").get("image") == "influxdb:1.8"


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES))
def test_restart_unless_stopped(services, name):
    assert service(services, name).get("restart") == "unless-stopped"


@pytest.mark.parametrize("name", PROJECT_SERVICES)
def test_command_starts_with_smartfactory(services, name):
    cmd = command_of(service(services, name))
    assert cmd[0] == "smartfactory", f"{name}: command {cmd} does not run the smartfactory CLI"


@pytest.mark.parametrize("name", PROJECT_SERVICES)
def test_command_is_a_real_cli_subcommand(services, name, keep_logging):
    cmd = command_of(service(services, name))
    path, _, rest = split_command(cmd)
    assert path, f"{name}: {cmd[1:2]} is not a smartfactory subcommand"
    leaf = click_command(path)
    assert not isinstance(leaf, click.Group), f"{name}: 'smartfactory {' '.join(path)}' is a group, not a command"
    result = CliRunner().invoke(cli, [*path, *rest, "--help"], prog_name="smartfactory")
    assert result.exit_code == 0, f"{name}: smartfactory {' '.join([*path, *rest])} --help: {result.output}"
    assert f"Usage: smartfactory {' '.join(path)} [OPTIONS]" in result.output


@pytest.mark.parametrize("name", PROJECT_SERVICES)
def test_command_passes_config_option_the_subcommand_has(services, name):
    path, config_path, _ = split_command(command_of(service(services, name)))
    assert config_path == "/etc/smartfactory/smartfactory.yaml", f"{name}: --config is {config_path!r}"
    opts = {o for p in click_command(path).params for o in getattr(p, "opts", [])}
    assert "--config" in opts, f"smartfactory {' '.join(path)} has no --config option"


@pytest.mark.parametrize("name", PROJECT_SERVICES)
def test_config_file_is_mounted_read_only_and_loads(services, name):
    svc = service(services, name)
    path, config_path, _ = split_command(command_of(svc))
    repo_path, mount = host_path_for(svc, config_path)
    assert repo_path == COMPOSE_CONFIG.resolve(), f"{name} mounts {repo_path}, not {COMPOSE_CONFIG}"
    assert mount["read_only"], f"{name}: the config mount {mount['target']} is not read-only"
    assert repo_path.is_file(), f"{repo_path} is missing"
    config = load_config(repo_path)  # raises ConfigError with the file, key and line
    written = set(raw_yaml(repo_path))
    for section in SECTIONS_NEEDED[path]:
        assert section in written, f"{repo_path.name}: section {section!r} (needed by {' '.join(path)}) is not written"
        assert config.require(section) is not None


@pytest.mark.parametrize("name", PROJECT_SERVICES)
def test_config_host_names_are_compose_services(services, name):
    path, repo_path, config = service_config(service(services, name))
    s = config.settings
    needed = SECTIONS_NEEDED[path]
    if "mqtt" in needed:
        host = s.mqtt.host
        assert host in service_with_image(services, "eclipse-mosquitto"), f"mqtt url host {host!r} is not the mosquitto service"
    if "store" in needed:
        assert s.store.kind == "influxdb", f"{repo_path.name}: store kind {s.store.kind!r}; compose runs InfluxDB"
        host = url_host(str(s.store.url))
        assert host in service_with_image(services, "influxdb:"), f"store url host {host!r} is not the influxdb service"
    if "gateway" in needed:
        for d in s.gateway.devices:
            assert d.host in services, f"gateway device {d.name} host {d.host!r} is not a compose service"


def test_store_database_is_the_one_influxdb_creates(services):
    config = load_config(COMPOSE_CONFIG)
    env = service(services, "influxdb").get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    assert env.get("INFLUXDB_DB") == "smartfactory"
    assert config.settings.store.database == env["INFLUXDB_DB"]


def test_gateway_devices_are_the_simulated_presses(services):
    _, _, gw_config = service_config(service(services, "gateway"))
    devices = gw_config.settings.gateway.devices
    assert [d.host for d in devices] == ["simulator"] * 3
    assert [d.port for d in devices] == SIMULATOR_PORTS
    for d in devices:
        assert tuple(d.tags) == PRESS_TAGS, f"device {d.name} does not read the PRESS_TAGS register map"

    sim_path, _, sim_config = service_config(service(services, "simulator"))
    assert sim_path == ("simulate",)
    sim = sim_config.settings.simulator
    assert sim.host == "0.0.0.0", "the simulator must listen on all interfaces to be reachable from the gateway"
    served = {m.port: m for m in sim.machines}
    assert sorted(served) == SIMULATOR_PORTS
    for d in devices:
        assert d.port in served, f"device {d.name} polls port {d.port}, which the simulator does not serve"
        assert d.unit_id == served[d.port].unit_id, f"device {d.name} unit {d.unit_id} != simulated unit"


def test_simulator_healthcheck_probes_every_served_port(services):
    text = healthcheck_text(service(services, "simulator"))
    for port in SIMULATOR_PORTS:
        assert str(port) in text, f"simulator healthcheck does not probe port {port}"


def test_api_listens_on_all_interfaces_and_is_published(services):
    svc = service(services, "api")
    _, _, config = service_config(svc)
    assert config.settings.api.host == "0.0.0.0"
    assert config.settings.api.port == 8000
    assert config.settings.api.port in container_ports(svc), f"api ports {svc.get('ports')} do not publish 8000"
    assert "8000:8000" in [str(p) for p in svc.get("ports", [])]
    assert "/health" in healthcheck_text(svc)


@pytest.mark.parametrize(
    ("name", "needs"),
    [
        ("collector", {"mosquitto": "service_healthy", "influxdb": "service_healthy"}),
        ("api", {"influxdb": "service_healthy"}),
        ("gateway", {"mosquitto": "service_healthy", "simulator": "service_healthy"}),
    ],
)
def test_depends_on_conditions(services, name, needs):
    deps = depends_on(service(services, name))
    for target, condition in needs.items():
        assert deps.get(target) == condition, f"{name} should depend on {target} with {condition}; has {deps}"


def test_healthy_conditions_have_healthchecks(services):
    for name, svc in services.items():
        for target, condition in depends_on(svc).items():
            assert target in services, f"{name} depends on unknown service {target!r}"
            if condition == "service_healthy":
                assert healthcheck_text(services[target]), f"{name} waits for {target} to be healthy; it has no healthcheck"


def test_influxdb_service(services):
    svc = service(services, "influxdb")
    text = healthcheck_text(svc)
    assert "/ping" in text and ":8086" in text, f"influxdb healthcheck {text!r} does not hit /ping on 8086"
    data = [m for m in mounts(svc) if m["target"] == "/var/lib/influxdb"]
    assert data and not is_bind(data[0]["source"]), "influxdb data is not on a named volume at /var/lib/influxdb"


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for m in mounts(svc):
            if m["source"] and not is_bind(m["source"]):
                assert m["source"] in declared, f"{name} uses volume {m['source']!r}, not declared under volumes:"


# ---- mosquitto ----------------------------------------------------------------------------


def mosquitto_conf() -> dict[str, list[str]]:
    assert MOSQUITTO_CONF.is_file(), f"{MOSQUITTO_CONF} is missing"
    out: dict[str, list[str]] = {}
    for line in MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key, []).append(value.strip())
    return out


def test_mosquitto_conf_is_mounted(services):
    svc = service(services, "mosquitto")
    path, mount = host_path_for(svc, "/mosquitto/config/mosquitto.conf")
    assert path == MOSQUITTO_CONF.resolve()
    assert mount["read_only"]
    assert MOSQUITTO_CONF.is_file()


def test_mosquitto_listens_where_the_clients_connect():
    conf = mosquitto_conf()
    port = load_config(COMPOSE_CONFIG).settings.mqtt.port
    assert any(v.split()[0] == str(port) for v in conf.get("listener", [])), f"no 'listener {port}' in mosquitto.conf"


def test_mosquitto_persistence_is_on_a_volume(services):
    conf = mosquitto_conf()
    assert conf.get("persistence") == ["true"]
    location = PurePosixPath(conf["persistence_location"][0])
    targets = [PurePosixPath(m["target"]) for m in mounts(service(services, "mosquitto")) if not is_bind(m["source"])]
    assert any(location == t or t in location.parents for t in targets), f"{location} is not on a named volume"


def test_anonymous_mosquitto_is_not_published(services):
    conf = mosquitto_conf()
    if conf.get("allow_anonymous") == ["true"]:
        assert not service(services, "mosquitto").get("ports"), "anonymous broker must stay on the internal network"
        text = MOSQUITTO_CONF.read_text(encoding="utf-8")
        assert "password_file" in text and "acl_file" in text, "mosquitto.conf must document the production password/ACL files"


# ---- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_bases_on_python_311_slim():
    froms = [args.split()[0] for ins, args in dockerfile_instructions() if ins == "FROM"]
    assert froms and all(f == "python:3.11-slim" for f in froms), f"FROM lines: {froms}"


def project_packages() -> list[str]:
    """Top-level package dirs setuptools installs (pyproject's packages.find include)."""
    includes = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    return [p.rstrip("*") for p in includes if (REPO / p.rstrip("*")).is_dir()]


def test_dockerfile_copies_the_project_before_pip_install_dot():
    patterns = dockerignore_patterns()
    for stage in dockerfile_stages():
        install = next((i for i, (ins, args) in enumerate(stage)
                        if ins == "RUN" and re.search(r"pip install( -\S+)* (\.|\"\.\[all\]\")(\s|$|&&|;)", args)), None)
        if install is None:
            continue
        run = stage[install][1]
        assert not re.search(r"pip install[^&;]*(\s-e\s|--editable)", run), (
            "an editable install points into the build stage's source tree, which the image does not keep"
        )
        copied = [args.split()[:-1] for ins, args in stage[:install] if ins == "COPY" and "--from" not in args]
        sources = {s.rstrip("/") for srcs in copied for s in srcs if not s.startswith("--")}
        assert "pyproject.toml" in sources or "." in sources, f"nothing copies pyproject.toml before pip install .: {sources}"
        assert not dockerignored("pyproject.toml", patterns), ".dockerignore excludes pyproject.toml"
        if "." not in sources:
            missing = [p for p in project_packages() if p not in sources]
            assert not missing, f"packages not copied before pip install .: {missing}"
        return
    pytest.fail("no stage runs `pip install .`")


def test_dockerignore_keeps_what_the_package_needs():
    patterns = dockerignore_patterns()
    meta = pyproject()
    packages = project_packages()
    entry = meta["project"]["scripts"]["smartfactory"].split(":")[0].split(".")[0]
    assert entry in packages, f"the smartfactory entry point's package {entry!r} is not in packages.find"
    for pkg in packages:
        assert not dockerignored(f"{pkg}/__init__.py", patterns), f".dockerignore excludes package {pkg}"
    for pkg, globs in meta["tool"]["setuptools"].get("package-data", {}).items():
        for g in globs:
            for f in (REPO / pkg).glob(g):
                assert not dockerignored(str(f.relative_to(REPO)), patterns), f".dockerignore excludes {f}"
    readme = meta["project"].get("readme")
    if isinstance(readme, str) and (REPO / readme).is_file():
        assert not dockerignored(readme, patterns)
    for junk in (".git/config", ".venv/bin/python", "tests/unit/test_compose.py"):
        assert dockerignored(junk, patterns), f".dockerignore should exclude {junk}"


def test_dockerfile_runs_as_non_root():
    users = [args for ins, args in dockerfile_stages()[-1] if ins == "USER"]
    assert users, "the runtime stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"runtime user is {user}"


def test_dockerfile_command_is_smartfactory_without_entrypoint():
    final = dockerfile_stages()[-1]
    assert not [a for i, a in final if i == "ENTRYPOINT"], (
        "an ENTRYPOINT would be prepended to compose's ['smartfactory', ...] commands"
    )
    cmds = [a for i, a in final if i == "CMD"]
    assert cmds, "the runtime stage has no CMD"
    cmd = json.loads(cmds[-1])
    assert cmd[0] == "smartfactory"
    assert "smartfactory" in pyproject()["project"]["scripts"]


def test_dockerfile_runtime_gets_the_installed_venv():
    stages = dockerfile_stages()
    build_text = " ".join(a for stage in stages[:-1] for i, a in stage if i == "RUN")
    venvs = re.findall(r"python -m venv (\S+)", build_text)
    if not venvs:
        pytest.skip("single-stage install without a venv")
    venv = venvs[0]
    final = stages[-1]
    assert any(i == "COPY" and "--from=" in a and a.split()[-1].rstrip("/") == venv for i, a in final), (
        f"the runtime stage does not copy {venv} from the build stage"
    )
    assert any(i == "ENV" and f"{venv}/bin" in a for i, a in final), f"{venv}/bin is not on the runtime PATH"


def test_dockerfile_fetches_nothing_but_pip():
    for ins, args in dockerfile_instructions():
        assert not (ins == "ADD" and re.search(r"https?://", args)), f"ADD from the network: {args}"
        if ins == "RUN":
            for tool in ("curl", "wget", "apt-get", "apk ", "git clone"):
                assert tool not in args, f"RUN uses {tool.strip()}: {args}"


WRITABLE_PATHS = {
    # (service, what): where its config makes it write (must outlive the container or be writable)
    ("gateway", "outbox"): lambda cfg: cfg.settings.gateway.outbox.path,
    ("collector", "spool"): lambda cfg: Path(cfg.settings.collector.data_dir),
    ("api", "plant database"): lambda cfg: Path(cfg.settings.api.database_url.removeprefix("sqlite:///")),
    ("api", "leader lock"): lambda cfg: cfg.base_dir / cfg.settings.api.leader_lock,
    ("api", "rollup cache"): lambda cfg: cache_path(cfg.settings.analytics, cfg.settings.store, cfg.base_dir),
}


@pytest.mark.parametrize(("name", "what"), sorted(WRITABLE_PATHS))
def test_every_path_a_service_writes_is_on_a_named_volume(compose, services, name, what):
    svc = service(services, name)
    _, _, cfg = service_config(svc)
    path = Path(WRITABLE_PATHS[(name, what)](cfg))
    assert path.is_absolute(), f"{name} writes its {what} to a relative path {path}"
    named = [m for m in mounts(svc) if not is_bind(m["source"])]
    holders = [m for m in named if path.is_relative_to(m["target"])]
    assert holders, f"{name} writes its {what} to {path}, which is on no named volume: {named}"
    assert holders[0]["source"] in compose["volumes"], f"volume {holders[0]['source']} is not declared"
    assert not holders[0].get("read_only"), f"{name}'s data volume is mounted read-only"
    # the image creates the directory owned by the service user, so a new volume inherits it
    assert f"/app/{Path(holders[0]['target']).name}" in DOCKERFILE.read_text()


def test_dockerfile_installs_every_service_s_extra():
    # the image runs simulate, gateway, collector and api: the core dependencies alone lack them
    runs = " ".join(args for stage in dockerfile_stages() for ins, args in stage if ins == "RUN")
    assert 'pip install ".[all]"' in runs
    extras = pyproject()["project"]["optional-dependencies"]
    assert extras["all"] == ["smartfactory[gateway,simulator,server]"]
    for extra in ("gateway", "simulator", "server"):
        assert f"'{extra}'" in runs, f"the dependency layer does not pre-install the {extra} extra"
