"""Inputs that are almost right: environment names that name no key, digits that are not ASCII,
and paths that are no regular file (a FIFO, a socket, a device, a shell's <(...) pipe)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fer_edge.cli import main
from fer_edge.config import load_config
from fer_edge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
ENV_HINT = ("not a setting's name; write FER_EDGE_<TABLE>__<KEY> in capitals, one underscore inside a name "
            "and two between table and key, e.g. FER_EDGE_MQTT__HOST for mqtt.host")


@pytest.mark.parametrize(("environ", "problem"), [
    ({"FER_EDGE___HOST__X": "a"}, f"FER_EDGE___HOST__X (environment): {ENV_HINT}"),
    ({"FER_EDGE_MQTT__": "a"}, f"FER_EDGE_MQTT__ (environment): {ENV_HINT}"),
    ({"FER_EDGE_MQTT___HOST": "a"}, f"FER_EDGE_MQTT___HOST (environment): {ENV_HINT}"),
    ({"FER_EDGE_HOTS__X": "a"}, "hots: unknown key (from the environment: FER_EDGE_HOTS__X) (known: "),
    ({"FER_EDGE_MQTT__PORT": "١٨٨٣"}, "mqtt.port: '١٨٨٣' is not a valid int (ASCII digits only)"),
    ({"FER_EDGE_MQTT__PORT": "１８８３"}, "mqtt.port: '１８８３' is not a valid int (ASCII digits only)"),
    ({"FER_EDGE_PUBLISH__HEARTBEAT": "٣.٥"},
     "publish.heartbeat: '٣.٥' is not a valid float (ASCII digits only)"),
])
def test_environment_names_and_numbers(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, environ=environ)
    problems = error.value.problems
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_ascii_environment_numbers_still_work() -> None:
    config = load_config(None, environ={"FER_EDGE_MQTT__PORT": " 1884 ",
                                        "FER_EDGE_SOURCE__OPEN_TIMEOUT": "2.5"})
    assert (config.mqtt.port, config.source.open_timeout) == (1884, 2.5)


def test_a_flag_in_other_digits_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--mqtt-port", "١٨٨٣"])
    assert exit_.value.code == 2
    assert "argument --mqtt-port: '١٨٨٣' is not a number (ASCII digits only)" in capsys.readouterr().err


@pytest.fixture
def odd_paths(tmp_path: Path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    yield {"fifo": (fifo, "is a FIFO (named pipe), not a regular file"),
           "socket": (sock_path, "is a socket, not a regular file"),
           "device": (Path("/dev/zero"), "is a character device, not a regular file")}
    sock.close()


@pytest.mark.parametrize("kind", ["fifo", "socket", "device"])
def test_a_model_that_is_no_regular_file_is_named_not_opened(odd_paths, kind, capsys) -> None:
    path, what = odd_paths[kind]
    assert main(["run", "--model", str(path), "--source", "x.mp4"]) == 1
    assert f"model file {path} {what}" in capsys.readouterr().err


@pytest.mark.parametrize(("kind", "what"), [
    ("fifo", "video file {path} is a FIFO (named pipe), not a regular file; give a video file"),
    ("socket", "video file {path} is a socket, not a regular file; give a video file"),
    ("device", "source '{path}' is a character device but not a video4linux camera (/dev/videoN)"),
])
def test_a_source_that_is_no_video_file_or_camera_is_named(odd_paths, kind, what, capsys) -> None:
    path, _ = odd_paths[kind]
    assert main(["run", "--source", str(path)]) == 1
    assert what.format(path=path) in capsys.readouterr().err


def test_check_config_of_a_fifo_does_not_hang(odd_paths, capsys) -> None:
    path, _ = odd_paths["fifo"]
    assert main(["check-config", str(path)]) == 78
    assert f"config file {path} is a FIFO (named pipe), not a regular file" in capsys.readouterr().err


@pytest.mark.slow
def test_process_substitution_is_not_taken_for_a_camera(tmp_path) -> None:
    command = f"{sys.executable} -m fer_edge run --source <(cat /dev/null)"
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "is a FIFO (named pipe), such as a shell's <(...) makes" in result.stderr
    assert "save it to a file first" in result.stderr and "Traceback" not in result.stderr
