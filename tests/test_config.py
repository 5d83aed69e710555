"""Config loading: TOML, environment overlay, flags, and one case per rejected value."""

from __future__ import annotations

from pathlib import Path

import pytest
from fer_edge.cli import main
from fer_edge.config import load_config
from fer_edge.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "edge" / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_example_config_is_valid_and_matches_defaults():
    assert load_config(EXAMPLE, environ={}) == load_config(None, environ={})


def test_environment_overrides_file_and_flags_override_both(tmp_path):
    path = write(tmp_path, '[mqtt]\nhost = "file-host"\nport = 1884\n')
    env = {"FER_EDGE_MQTT__HOST": "env-host", "FER_EDGE_MQTT__PORT": "1885",
           "FER_EDGE_SOURCE__REALTIME": "false"}
    config = load_config(path, environ=env)
    assert (config.mqtt.host, config.mqtt.port, config.source.realtime) == ("env-host", 1885, False)
    config = load_config(path, {"mqtt.host": "flag-host", "mqtt.port": None}, environ=env)
    assert (config.mqtt.host, config.mqtt.port) == ("flag-host", 1885)


def test_device_id_defaults_to_a_topic_safe_host_name():
    device_id = load_config(None, environ={}).device_id
    assert device_id and not set(device_id) & set("+#/ ")


def test_password_from_credentials_directory(tmp_path, monkeypatch):
    (tmp_path / "mqtt_password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert load_config(None, {"mqtt.username": "cam"}, environ={}).mqtt_password() == "s3cret"


@pytest.mark.parametrize("text, message", [
    ('[mqtt]\nhots = "x"\n', "mqtt.hots: unknown key"),
    ('[camera]\nspec = "0"\n', "camera: unknown key"),
    ('[mqtt]\nport = "1883"\n', "mqtt.port: expected int, got str"),
    ('[mqtt]\nport = 70000\n', "mqtt.port: 70000 must be a TCP port"),
    ('[mqtt]\nqos = 3\n', "mqtt.qos: 3 must be 0, 1 or 2"),
    ('[mqtt]\nprefix = "a/#"\n', "mqtt.prefix: 'a/#' must be a non-empty topic"),
    ('[mqtt]\ndevice_id = "a/b"\n', "mqtt.device_id: 'a/b' must not contain"),
    ('[mqtt]\npassword_file = "/etc/passwd"\n', "a password needs mqtt.username"),
    ('[mqtt]\ntls = true\ncert_file = "/etc/hostname"\n', "a client certificate needs both"),
    ('[mqtt]\nca_file = "/etc/hostname"\n', "only apply with tls = true"),
    ('[mqtt]\ntls = true\nca_file = "/nonexistent/ca.pem"\n',
     "mqtt.ca_file: file /nonexistent/ca.pem not found"),
    ('[source]\nfps = 0\n', "source.fps: 0 must be between 1 and 240"),
    ('[source]\nrealtime = "yes"\n', "source.realtime: expected bool"),
    ('[model]\nthreads = 0\n', "model.threads: 0 must be between 1 and 64"),
    ('[detector]\nscale_factor = 1.0\n', "detector.scale_factor: 1.0 must be above 1.0"),
    ('[detector]\ndetect_every = 0\n', "detector.detect_every: 0 must be between 1 and 100"),
    # the bounds the detector checked again by itself, with other limits, before one config shape
    ('[detector]\nmin_neighbors = -1\n', "detector.min_neighbors: -1 must be between 0 and 50"),
    ('[detector]\nmin_face = 0\n', "detector.min_face: 0 must be between 8 and 4096 pixels"),
    ('[detector]\nworking_width = 10\n', "detector.working_width: 10 must be 0 (full frame) or between 80"),
    ('[detector]\ntype = "mtcnn"\n', "detector.type: 'mtcnn' must be 'yunet' or 'haar'"),
    ('[detector]\nmax_faces = -1\n', "detector.max_faces: -1 must be between 0 and 1000"),
    ('[detector]\nscore_threshold = 1.5\n', "detector.score_threshold: 1.5 must be between 0 and 1"),
    ('[tracking]\nsmoothing = 0\n', "tracking.smoothing: 0.0 must be above 0"),
    ('[publish]\nmode = "sometimes"\n', "publish.mode: 'sometimes' must be 'every' or 'change'"),
    ('log_level = "loud"\n', "log_level: 'loud' must be debug"),
    ('source = 5\n', "source: expected a [source] table"),
    ("[mqtt\n", "is not valid TOML"),
])
def test_rejected_config_names_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text), environ={})
    assert message in str(error.value)


def test_bad_environment_value_names_the_key():
    with pytest.raises(ConfigError, match=r"mqtt.port: 'abc' is not a valid int"):
        load_config(None, environ={"FER_EDGE_MQTT__PORT": "abc"})


def test_every_error_is_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, "[mqtt]\nport = 0\nqos = 5\nbogus = 1\n"), environ={})
    assert len(error.value.problems) == 3


def test_check_config_exit_codes(tmp_path, capsys):
    assert main(["check-config", str(EXAMPLE)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = write(tmp_path, "[mqtt]\nport = 0\n[source]\nfps = -1\n")
    assert main(["check-config", str(bad)]) == 78
    err = capsys.readouterr().err
    assert "mqtt.port" in err and "source.fps" in err and "Traceback" not in err
    assert main(["check-config", str(tmp_path / "missing.toml")]) == 78
    assert "not found" in capsys.readouterr().err
