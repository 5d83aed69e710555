"""Hostile configs and secret files: each is exit 78 with one line, never a traceback, and
check-config refuses what ``run`` refuses (both read secrets with the same function)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from fer_edge.cli import main
from fer_edge.config import load_config
from fer_edge.config.rules import is_host
from fer_edge.config.secrets import http_token
from fer_edge.config.tables import HttpConfig
from fer_edge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def check_config(path: Path | str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["check-config", str(path)])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nests arrays or tables too deeply to parse"),
    ("a = " + "{b = " * 3000 + "1" + "}" * 3000 + "\n", "nests arrays or tables too deeply to parse"),
    ("# " + "x" * (1 << 20) + "\n", "is over 1,048,576 bytes; a fer-edge config is a few kB"),
    ('[mqtt]\nhost = "' + "a" * 10_000_000 + '"\n', "is over 1,048,576 bytes"),
    ('[mqtt]\nhost = "' + "a." * 3000 + 'b"\n', "is 6,001 characters long; at most 4,096"),
    ('[mqtt]\nhost = "broker\\nERROR forged"\n', "mqtt.host: 'broker\\nERROR forged' holds the control"),
    ('[mqtt]\nhost = "broker:1883"\n', "must be a host name or an IP address (no brackets, no port)"),
    ('[mqtt]\nhost = "' + "a" * 40 + '!"\n', "must be a host name or an IP address"),  # no regex backtracking
    ('[source]\nspec = "0\\u001b[2J"\n', "source.spec: '0\\x1b[2J' holds the control character U+001B"),
    ('[http]\nallowed_hosts = ["pi.local", "evil\\r\\nX: y"]\n', "holds the control character U+000D"),
])
def test_a_hostile_config_file_is_one_line_and_exit_78(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    started = time.monotonic()
    status, err = check_config(path, capsys)
    assert (status, "Traceback" not in err) == (78, True), err[-2000:]
    assert message in err and len(err) < 400, err[:400]
    assert time.monotonic() - started < 5


def test_newlines_from_the_environment_are_refused_too() -> None:
    with pytest.raises(ConfigError, match="mqtt.host: 'broker\\\\nFAKE' holds the control character U"):
        load_config(None, environ={"FER_EDGE_MQTT__HOST": "broker\nFAKE"})
    with pytest.raises(ConfigError, match="mqtt.username: 'u\\\\rx' holds the control character U\\+000D"):
        load_config(None, environ={"FER_EDGE_MQTT__USERNAME": "u\rx"})


def test_dev_zero_as_the_config_is_refused_without_reading_it(capsys: pytest.CaptureFixture[str]) -> None:
    status, err = check_config("/dev/zero", capsys)
    assert status == 78 and "config file /dev/zero" in err and "Traceback" not in err and len(err) < 300


def test_host_names_are_checked_in_linear_time() -> None:
    started = time.monotonic()
    assert not is_host("a" * 252 + "!")
    assert not is_host("a-" * 126 + "!")
    assert time.monotonic() - started < 0.05
    assert is_host("broker.local") and is_host("broker.") and is_host("::1") and is_host("10.0.0.7")
    assert not is_host("a..b") and not is_host("-a") and not is_host("") and not is_host("a" * 254)


def secret_cases(tmp_path: Path) -> list[tuple[str, str]]:
    """(path, the problem both commands report) for each hostile token file."""
    files = {"empty": b"", "blank": b" \n\n", "short": b"0123456789abcde\n",
             "latin1": b"\xe9t\xe9-token-0123456789",
             "two_lines": b"0123456789abcdef\n0123456789abcdef\n",
             "non_ascii": "jeton-été-0123456789".encode()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    os.mkfifo(tmp_path / "fifo")
    return [(str(tmp_path / "empty"), "is empty; write the secret into it"),
            (str(tmp_path / "blank"), "is empty"),
            (str(tmp_path / "short"), "the token has 15 characters; use at least 16"),
            (str(tmp_path / "latin1"), "(not UTF-8 text)"),
            (str(tmp_path / "two_lines"), "holds the control character U+000A; write it on one line"),
            (str(tmp_path / "non_ascii"), "holds characters beyond ASCII"),
            (str(tmp_path / "fifo"), "is not a regular file"),
            ("/dev/zero", "is not a regular file")]


def test_check_config_refuses_each_hostile_token_file_as_run_does(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for token_file, problem in secret_cases(tmp_path):
        settings = HttpConfig(enabled=True, token_file=token_file)
        with pytest.raises(ConfigError) as refused:  # what `run` does building the web page
            http_token(settings)
        assert problem in str(refused.value), (token_file, str(refused.value))
        config = tmp_path / "config.toml"
        config.write_text(f'[http]\nenabled = true\ntoken_file = "{token_file}"\n')
        status, err = check_config(config, capsys)
        assert status == 78 and refused.value.problems[0] in err and "Traceback" not in err, err


def test_an_empty_password_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "password").write_bytes(b"\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[mqtt]\nusername = "cam"\npassword_file = "{tmp_path / "password"}"\n')
    status, err = check_config(config, capsys)
    assert status == 78 and f"mqtt.password_file: {tmp_path / 'password'} is empty" in err


@pytest.mark.slow
@pytest.mark.parametrize("key", ["http.token_file", "mqtt.password_file"])
def test_a_secret_in_a_directory_the_service_user_cannot_enter_is_exit_78_for_both(key: str) -> None:
    """As the service user would (nobody here): PermissionError was a traceback and exit 1."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.fail("this test drops to the user nobody: run it as root with setpriv (util-linux) installed")
    with tempfile.TemporaryDirectory() as top:  # pytest's tmp_path sits in a directory nobody cannot enter
        os.chmod(top, 0o755)
        run_as_nobody(Path(top), key)


def run_as_nobody(tmp_path: Path, key: str) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    (locked / "secret").write_text("0123456789abcdef-secret\n")
    config = tmp_path / "config.toml"
    table = ("[http]\nenabled = true\ntoken_file" if key == "http.token_file" else
             '[mqtt]\nusername = "u"\npassword_file')
    config.write_text(f'{table} = "{locked / "secret"}"\n')
    config.chmod(0o644)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "fer_edge"]
    line = f"{key}: cannot read {locked / 'secret'} (Permission denied)"
    for command in (["check-config", str(config)],
                    ["run", "--config", str(config), "--source", "/nonexistent.mp4"]):
        run = subprocess.run(nobody + command, capture_output=True, text=True, timeout=120, cwd="/")
        assert run.returncode == 78, (command, run.stderr)
        assert line in run.stderr and "Traceback" not in run.stderr, run.stderr
