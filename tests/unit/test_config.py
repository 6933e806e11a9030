"""Config validation: a bad file names the file, the key path and the line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli.config import ConfigError, load_config
from cli.demo import DemoOptions, build_config
from cli.main import cli


def _demo_config() -> dict:
    opts = DemoOptions(None, None, "smartfactory", Path("demo-data"), "127.0.0.1", 8000, 1.0)
    return build_config(opts, broker_port=1883, plc_ports=[5020, 5021, 5022, 4840])


def _write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def test_demo_config_is_valid(tmp_path):
    loaded = load_config(_write(tmp_path, _demo_config()))
    assert loaded.settings.gateway is not None
    assert [(d.name, d.protocol.value) for d in loaded.settings.gateway.devices] == [
        ("press-1", "modbus"), ("press-2", "mc"), ("press-3", "xgt"), ("press-4", "opcua")]
    assert loaded.settings.store.kind == "sqlite"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such config file"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    path = _write(tmp_path, "mqtt:\n  url: mqtt://x:1883\n gateway: [\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}:3:" in str(err.value)
    assert "not valid YAML" in str(err.value)


def test_wrong_type_deep_in_a_tag_names_key_path_and_line(tmp_path):
    data = _demo_config()
    data["gateway"]["devices"][1]["tags"][3]["type"] = "float33"
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "gateway.devices[1].tags[3].type" in message
    assert "float32" in message  # says what would be valid
    line = path.read_text().splitlines().index(next(
        ln for ln in path.read_text().splitlines() if "float33" in ln)) + 1
    assert f"{path}:{line}: gateway.devices[1].tags[3].type" in message


def test_unknown_key_is_reported_as_unknown(tmp_path):
    data = _demo_config()
    data["collector"]["batchsize"] = 10
    with pytest.raises(ConfigError, match=r"collector\.batchsize: unknown key"):
        load_config(_write(tmp_path, data))


def test_influx_store_without_url_names_the_missing_key(tmp_path):
    data = _demo_config()
    data["store"] = {"kind": "influxdb", "database": "x"}
    with pytest.raises(ConfigError, match=r"store\.url: required key is missing"):
        load_config(_write(tmp_path, data))


def test_bad_mqtt_url_says_how_to_write_it(tmp_path):
    data = _demo_config()
    data["mqtt"]["url"] = "tcp://broker"
    with pytest.raises(ConfigError, match=r"mqtt\.url: .*mqtt://HOST"):
        load_config(_write(tmp_path, data))


def test_duplicate_machines_are_refused(tmp_path):
    data = _demo_config()
    data["gateway"]["devices"][2]["name"] = "press-1"
    with pytest.raises(ConfigError, match=r"gateway: two devices publish as the same machine: press-line-1/press-1"):
        load_config(_write(tmp_path, data))


def test_duplicate_tags_are_refused(tmp_path):
    data = _demo_config()
    data["gateway"]["devices"][0]["tags"].append(dict(data["gateway"]["devices"][0]["tags"][0]))
    with pytest.raises(ConfigError, match=r"gateway\.devices\[0\]: tag names must be unique per device; repeated: state"):
        load_config(_write(tmp_path, data))


def test_every_problem_is_listed_not_just_the_first(tmp_path):
    data = _demo_config()
    data["api"]["port"] = 70000
    data["simulator"]["speed"] = -1
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, data))
    assert "2 problem(s)" in str(err.value)
    assert "api.port" in str(err.value) and "simulator.speed" in str(err.value)


def test_cli_exits_2_with_message_and_no_traceback(tmp_path):
    data = _demo_config()
    data["gateway"]["devices"][0]["port"] = "five-oh-two"
    path = _write(tmp_path, data)
    result = CliRunner().invoke(cli, ["gateway", "plan", "--config", str(path)])
    assert result.exit_code == 2
    assert "gateway.devices[0].port" in result.output
    assert "Traceback" not in result.output


def test_cli_reports_a_missing_section(tmp_path):
    data = _demo_config()
    del data["simulator"]
    path = _write(tmp_path, data)
    result = CliRunner().invoke(cli, ["simulate", "--config", str(path)])
    assert result.exit_code == 2
    assert "section 'simulator' is missing" in result.output


def test_gateway_plan_prints_the_reads(tmp_path):
    result = CliRunner().invoke(cli, ["gateway", "plan", "--config", str(_write(tmp_path, _demo_config()))])
    assert result.exit_code == 0, result.output
    assert "press-line-1/press-1 (127.0.0.1:5020 unit 1): 5 tags in 2 reads" in result.output
    assert "holding_register  address     0 count    5" in result.output


@pytest.mark.parametrize("args", [[], ["demo"], ["simulate"], ["gateway"], ["gateway", "run"], ["gateway", "plan"],
                                  ["collector"], ["api"], ["broker"]])
def test_every_command_has_help(args):
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output


def test_demo_config_names_the_history_rollout_for_the_reports(tmp_path):
    from cli.demo import LINE, TENANT

    opts = DemoOptions(None, None, "smartfactory", Path("demo-data"), "127.0.0.1", 8000, 1.0)
    data = build_config(opts, broker_port=1883, plc_ports=[5020, 5021, 5022], rollout_date="2026-11-09")
    rollout = load_config(_write(tmp_path, data)).settings.analytics.rollout(TENANT, LINE)
    assert rollout is not None and rollout.date.isoformat() == "2026-11-09"
    assert "analytics" not in _demo_config()  # no history, no rollout to report on


def test_the_demo_line_moves_for_the_first_45_minutes_whenever_it_is_started():
    """Breaks and cleaning are placed clear of the start: a planned stop there showed a still line."""
    from datetime import datetime, timedelta, timezone

    from cli.demo import HISTORY_UTC_OFFSET_H, MOVING_AFTER_START_MIN, build_scenario
    from simulators.calendar import CalendarSettings, day_plan

    tz = timezone(timedelta(hours=HISTORY_UTC_OFFSET_H))
    day = datetime(2026, 11, 23, tzinfo=tz)  # a Monday
    opts = DemoOptions(None, None, "smartfactory", Path("demo-data"), "127.0.0.1", 8000, 1.0)
    for minute in range(0, 1440, 5):
        start = day + timedelta(minutes=minute)
        cal = CalendarSettings.model_validate(build_scenario(opts, [5020, 5021, 5022], start.timestamp())["calendar"])
        assert len(cal.breaks) == 3
        window = (minute * 60.0, (minute + MOVING_AFTER_START_MIN) * 60.0)
        stops = list(day_plan(cal, day.date()).planned) + [(a + 86400, b + 86400) for a, b in
                                                           day_plan(cal, (day + timedelta(days=1)).date()).planned]
        clash = [(a, b) for a, b in stops if a < window[1] and b > window[0]]
        assert not clash, f"started at {start:%H:%M}: planned stop {clash} in the first {MOVING_AFTER_START_MIN} min"
    # and the history keeps its breaks and cleaning when they are not in the way
    noon = build_scenario(opts, [5020, 5021, 5022], (day + timedelta(hours=12, minutes=30)).timestamp())
    assert noon["calendar"]["cleaning_minutes"] == 10
    assert [b["start"] for b in noon["calendar"]["breaks"]] == ["10:00", "18:00", "02:00"]
