"""Config loading: TOML, environment overlay, flags, and one case per rejected value."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from fer_edge.cli import build_parser, main, run_overrides
from fer_edge.config import load_config
from fer_edge.config.secrets import mqtt_password
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



def run_flags(*argv: str) -> dict:
    """The config keys ``fer-edge run ARGV`` overlays."""
    return run_overrides(build_parser().parse_args(["run", *argv]))


def test_http_port_flag_overrides_the_config_and_turns_the_page_on(tmp_path):
    path = write(tmp_path, "[http]\nport = 8081\n")
    config = load_config(path, run_flags("--http-port", "9090"), environ={"FER_EDGE_HTTP__PORT": "8082"})
    assert (config.http.port, config.http.enabled, config.http.preview) == (9090, True, False)
    config = load_config(path, run_flags(), environ={})
    assert (config.http.port, config.http.enabled) == (8081, False)  # no flag: the file's, still off


@pytest.mark.parametrize("port", ["0", "65536"])
def test_a_bad_http_port_flag_is_refused_as_the_config_value_is(port, capsys):
    assert main(["run", "--http-port", port]) == 78
    err = capsys.readouterr().err
    assert f"http.port: {port} must be a TCP port, 1..65535" in err and "Traceback" not in err

def test_device_id_defaults_to_a_topic_safe_host_name():
    device_id = load_config(None, environ={}).device_id
    assert device_id and not set(device_id) & set("+#/ ")


def test_password_from_credentials_directory(tmp_path, monkeypatch):
    (tmp_path / "mqtt_password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert mqtt_password(load_config(None, {"mqtt.username": "cam"}, environ={}).mqtt) == "s3cret"


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
    ('[tracking]\nsmoothing_time = -1\n', "tracking.smoothing_time: -1.0 must be"),
    ('[tracking]\nmin_dwell = 61\n', "tracking.min_dwell: 61.0 must be"),
    ('[tracking]\nsmoothing = 0.3\n',
     "tracking.smoothing: unknown key; it was a weight per frame, replaced by tracking.smoothing_time"),
    ('[publish]\nmode = "sometimes"\n', "publish.mode: 'sometimes' must be 'every' or 'change'"),
    ('log_level = "loud"\n', "log_level: 'loud' must be debug"),
    ('source = 5\n', "source: expected a [source] table"),
    ("[mqtt\n", "is not valid TOML"),
    # topics and ids a broker would refuse, found here instead of by a daemon that delivers nothing
    ('[mqtt]\ndevice_id = "kitchen\\u0007"\n', "mqtt.device_id: 'kitchen\\x07' holds the control character"),
    ('[mqtt]\nprefix = "$SYS/fer"\n', "mqtt.prefix: '$SYS/fer' starts with $, which brokers keep"),
    ('[mqtt]\nprefix = "fer\\u0085edge"\n', "mqtt.prefix: 'fer\\x85edge' holds the control character U+0085"),
    (f'[mqtt]\ndevice_id = "{"d" * 70_000}"\n', "mqtt.device_id: 'ddd"),
    (f'[mqtt]\ndevice_id = "{"d" * 70_000}"\n', "'... is 70,000 characters long; at most 4,096"),
    # every text setting: at most 4,096 characters, no control characters
    (f'[mqtt]\nhost = "{"h" * 4_097}"\n', "mqtt.host: 'hhh"),
    ('[mqtt]\nusername = "cam\\nfake log line"\n', "mqtt.username: 'cam\\nfake log line' holds the control"),
    ('[mqtt]\nclient_id = "cam\\u0000"\n', "mqtt.client_id: 'cam\\x00' holds the control character U+0000"),
    ('[mqtt]\nprotocol = "3"\n', "mqtt.protocol: '3' must be '5' or '3.1.1'"),
    ('[homeassistant]\nenabled = true\ndiscovery_prefix = "$ha"\n',
     "homeassistant.discovery_prefix: '$ha' starts with $"),
    # infinite or absurd numbers
    ('[publish]\nheartbeat = inf\n', "publish.heartbeat: inf is out of range (numbers must be finite"),
    ('[publish]\nstats_interval = nan\n', "publish.stats_interval: nan is out of range"),
    ('[source]\nopen_timeout = 1e300\n', "source.open_timeout: 1e+300 is out of range"),
    ('[source]\nmax_frames = 9223372036854775807\n', "within ±1,000,000,000"),
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


def test_bad_environment_numbers_are_out_of_range_too():
    with pytest.raises(ConfigError, match=r"publish.heartbeat: inf is out of range"):
        load_config(None, environ={"FER_EDGE_PUBLISH__HEARTBEAT": "inf"})


def test_device_id_must_be_valid_utf8_in_the_environment():
    undecodable = b"cam\xff".decode("utf-8", "surrogateescape")  # how os.environ holds such bytes
    with pytest.raises(ConfigError, match="mqtt.device_id: 'cam.udcff' is not valid UTF-8"):
        load_config(None, environ={"FER_EDGE_MQTT__DEVICE_ID": undecodable})


@pytest.mark.parametrize(("raw", "message"), [
    (b"\xef\xbb\xbf[mqtt]\nhost = 'b'\n", "starts with a UTF-8 byte-order mark"),
    ("[mqtt]\nhost = 'b'\n".encode("utf-16"), "is UTF-16 text; TOML must be UTF-8"),
    (b"[mqtt]\nhost = 'k\xfcche'\n", "is not UTF-8 text (byte 0xfc at line 2, column 10)"),
])
def test_a_config_that_is_not_plain_utf8_exits_78_with_a_sentence(tmp_path, capsys, raw, message):
    path = tmp_path / "config.toml"
    path.write_bytes(raw)
    assert main(["check-config", str(path)]) == 78
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_tls_files_that_do_not_load_or_match_are_config_errors(tmp_path, tls_files):
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, f'[mqtt]\ntls = true\nca_file = "{garbage}"\n'
                                    f'cert_file = "{tls_files["client_cert"]}"\n'
                                    f'key_file = "{tls_files["key"]}"\n'), environ={})
    ca_problem, pair_problem = error.value.problems
    assert ca_problem.startswith(f"mqtt.ca_file: {garbage} does not load as PEM CA certificates")
    assert pair_problem.startswith("mqtt.cert_file, mqtt.key_file:") and "key values mismatch" in pair_problem


def test_matching_tls_files_load(tmp_path, tls_files):
    config = load_config(write(tmp_path, f'[mqtt]\ntls = true\nca_file = "{tls_files["ca"]}"\n'
                                         f'cert_file = "{tls_files["client_cert"]}"\n'
                                         f'key_file = "{tls_files["client_key"]}"\n'), environ={})
    assert config.mqtt.tls


def test_client_id_and_protocol_defaults():
    mqtt = load_config(None, environ={}).mqtt
    assert (mqtt.client_id, mqtt.protocol) == ("", "5")


# --- check-config: the fleet's pre-flight rejects what `run` would ---

@pytest.mark.parametrize(("text", "message"), [
    ('[source]\nspec = "webcam-please"\n', "source.spec: unknown source 'webcam-please'"),
    ('[source]\nspec = "gst:  "\n', "source.spec: source 'gst:  ' has an empty pipeline"),
    ('[model]\npath = "/nonexistent/model.tflite"\n', "model.path: model file /nonexistent/model.tflite not"),
    ('[model]\npath = "tests/data/float_input.tflite"\n', "expected one uint8[1, 48, 48, 1] input"),
])
def test_check_config_rejects_what_run_would(tmp_path, capsys, monkeypatch, text, message):
    monkeypatch.chdir(EXAMPLE.parents[1])
    assert main(["check-config", str(write(tmp_path, text))]) == 78
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_check_config_rejects_an_unreadable_password_file(tmp_path, capsys):
    password = tmp_path / "password"
    password.write_bytes(b"\xff\xfe secret")
    path = write(tmp_path, f'[mqtt]\nusername = "cam"\npassword_file = "{password}"\n')
    assert main(["check-config", str(path)]) == 78
    assert f"mqtt.password_file: cannot read {password} (not UTF-8 text)" in capsys.readouterr().err


def test_check_config_warns_about_a_password_file_others_can_read(tmp_path, capsys):
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    password.chmod(0o644)
    path = write(tmp_path, f'[mqtt]\nusername = "cam"\npassword_file = "{password}"\ndevice_id = "cam1"\n')
    assert main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    assert f"warning: the MQTT password file {password} is readable by every user" in captured.err
    assert f"chmod 600 {password}" in captured.err and "OK" in captured.out
    password.chmod(0o640)  # group-readable, for the service's group: fine
    assert main(["check-config", str(path)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_check_config_warns_when_the_device_id_is_a_stock_host_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "raspberrypi")
    assert main(["check-config", str(write(tmp_path, "[mqtt]\n"))]) == 0
    assert "the host name 'raspberrypi' names this board's topics" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["werkzeug", "waitress"])
def test_check_config_refuses_the_page_without_the_web_extra_as_run_does(tmp_path, capsys, monkeypatch,
                                                                        missing):
    import importlib

    from fer_edge.errors import EdgeError

    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed: imports of it fail
    message = f"http.enabled needs the web extra ({missing} is missing): pip install 'fer-edge[web]'"
    assert main(["check-config", str(write(tmp_path, "[http]\nenabled = true\n"))]) == 78
    assert message in capsys.readouterr().err
    monkeypatch.delitem(sys.modules, "fer_edge.web.server", raising=False)
    with pytest.raises(EdgeError, match=re.escape(message)):  # what `run` says building the server
        importlib.import_module("fer_edge.web.server")


def test_check_config_refuses_a_short_token_as_run_does(tmp_path, capsys):
    token = tmp_path / "token"
    token.write_text("short\n")
    path = write(tmp_path, f'[http]\nenabled = true\ntoken_file = "{token}"\n')
    assert main(["check-config", str(path)]) == 78
    assert "http.token_file: the token has 5 characters; use at least 16" in capsys.readouterr().err
    assert main(["check-config", str(write(tmp_path, '[http]\ntoken_file = "/etc/hostname"\n'))]) == 0


@pytest.mark.parametrize("spec", ["0", "/dev/video2", "picamera2", "picamera2:1", "csi", "CSI:1", "clip.mp4",
                                  "file:/x", "gst:videotestsrc ! appsink", "rtsp://cam/1", "http://cam/x.mjpg",
                                  "./clip", "webcam-please", "gst:", "csi:x", ""])
def test_the_spec_check_agrees_with_open_source(spec):
    from fer_edge.config.checks import source_spec_problem
    from fer_edge.errors import SourceError
    from fer_edge.sources import open_source

    try:
        open_source(spec)
        refused = None
    except SourceError as exc:
        refused = str(exc)
    assert source_spec_problem(spec) == refused


@pytest.mark.slow
def test_check_config_loads_neither_opencv_nor_paho():
    code = ("import sys\nfrom fer_edge.cli import main\nrc = main(['check-config', sys.argv[1]])\n"
            "sys.exit(rc or 3 * ('cv2' in sys.modules) or 4 * ('paho' in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True, text=True,
                            timeout=60, cwd=EXAMPLE.parents[1])
    assert result.returncode == 0, result.stderr
