"""install-service with hostile paths: no input adds a directive to the unit, and systemd reads
every path back as it was given (systemd-analyze verify finds the executable at its odd path)."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fer_edge.errors import EdgeError
from fer_edge.tools import service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_service import systemd_analyze

# What systemd.syntax(7) gives a meaning to: specifiers, variables, quotes, escapes, separators
ODD_NAMES = ["v env", "100%n", "a\\b", 'q"uote', "it's", "$HOME", "${X}", "semi;colon", "-dash", "@at",
             "tab\\t", "\\x41", "#hash", "\u00e9t\u00e9"]


def directives(unit: str) -> list[str]:
    """The keys of the unit's directive lines, in order."""
    return [line.split("=", 1)[0] for line in unit.splitlines() if line and not line.startswith(("#", "["))]


def plan_unit(tmp_path: Path, python: str, config_dir: Path) -> str:
    for name in ("mqtt_password", "http_token"):
        if config_dir.is_dir():
            (config_dir / name).write_text("secret-secret-secret\n")
    steps = service.install_steps(python=python, config_dir=config_dir, unit_dir=tmp_path / "units",
                                  user="root", jetson=False)
    return next(step.content for step in steps
                if isinstance(step, service.WriteFile) and step.path.name == service.UNIT_NAME)


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A directory outside /tmp: install-service refuses a Python there (PrivateTmp=yes hides it)."""
    top = Path("/dev/shm")
    if not os.access(top, os.W_OK):
        top = Path(__file__).resolve().parents[1] / "build"
    top.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=top, prefix="fer-edge-unit-"))
    yield path
    shutil.rmtree(path)


@pytest.mark.parametrize("name", ODD_NAMES)
@pytest.mark.usefixtures("checkout_anywhere")
def test_a_hostile_path_verifies_and_adds_no_directive(tmp_path: Path, outside_tmp: Path, name: str) -> None:
    # systemd refuses \, " and ' in an executable's path: those are refused first (below)
    venv = outside_tmp / (name if not set(name) & set(service.EXEC_UNSAFE) else "venv") / "bin"
    venv.mkdir(parents=True)
    python = venv / "python"
    python.symlink_to(sys.executable)
    config_dir = tmp_path / f"etc {name}"
    config_dir.mkdir()
    unit = plan_unit(tmp_path, str(python), config_dir)
    assert directives(unit) == directives(plan_unit(tmp_path, sys.executable, tmp_path))
    path = tmp_path / "units" / service.UNIT_NAME
    path.parent.mkdir(exist_ok=True)
    path.write_text(unit)
    result = systemd_analyze("verify", "--man=no", str(path))
    # verify resolves ExecStart's first word and fails when no executable is there: the quoting
    # of an odd path is read back exactly, or this fails
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), \
        unit + result.stdout + result.stderr
    credential = next(line for line in unit.splitlines() if line.startswith("LoadCredential=mqtt_password:"))
    assert credential == f"LoadCredential=mqtt_password:{config_dir / 'mqtt_password'}".replace("%", "%%")


@pytest.mark.parametrize("name", ["a\\b", 'q"uote', "it's"])
def test_an_executable_path_systemd_refuses_is_refused_before_the_unit_is_written(outside_tmp: Path,
                                                                                  name: str) -> None:
    python = outside_tmp / name / "python"
    with pytest.raises(EdgeError, match="which systemd refuses in the name of an executable"):
        service.install_steps(python=str(python), config_dir=outside_tmp, unit_dir=outside_tmp, user="root",
                              jetson=False)


@pytest.mark.parametrize("bad", ["x\nExecStartPre=/bin/sh -c id", "x\rUser=root", "x\x00y", "x\x1b[2J",
                                 "x\x85y", "ends\\"])
@pytest.mark.parametrize("where", ["config_dir", "python", "unit_dir"])
def test_control_characters_and_a_final_backslash_are_refused_in_every_path(tmp_path: Path, bad: str,
                                                                            where: str) -> None:
    paths = {"python": sys.executable, "config_dir": tmp_path / "etc", "unit_dir": tmp_path / "units"}
    paths[where] = f"{tmp_path}/{bad}" if where == "python" else tmp_path / bad
    refused = r" .* (holds the control character U\+[0-9A-F]{4}|ends with a backslash), which a systemd unit"
    with pytest.raises(EdgeError, match=re.escape(where.replace("_", "-")) + refused):
        service.install_steps(user="root", jetson=False, **paths)  # type: ignore[arg-type]


def test_the_cli_refuses_a_config_dir_with_a_newline(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from fer_edge.cli import main

    assert main(["install-service", "--dry-run", "--config-dir", f"{tmp_path}/x\nExecStartPre=/bin/sh",
                 "--unit-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "config-dir" in err and "U+000A" in err and "Traceback" not in err


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(codec="utf-8"), min_size=1, max_size=40))
def test_fuzz_no_argument_adds_a_line_or_escapes_its_quotes(arg: str) -> None:
    """Any text: refused, or one ExecStart word that systemd's unquoting gives back unchanged."""
    try:
        quoted = service.quote_exec_arg(arg)
    except EdgeError:
        assert service.unit_path_problem(arg) is not None
        return
    assert "\n" not in quoted and "\r" not in quoted
    assert unquote_exec_word(quoted) == arg


def unquote_exec_word(word: str) -> str:
    """systemd's reading of one ExecStart word (specifiers, $, then quotes and C escapes), for the fuzz."""
    if word.startswith('"'):
        assert word.endswith('"') and len(word) >= 2
        body, out, i = word[1:-1], [], 0
        while i < len(body):
            if body[i] == "\\":
                assert body[i + 1] in '\\"', word  # we only write these two escapes
                out.append(body[i + 1])
                i += 2
            else:
                assert body[i] != '"', word  # an unescaped quote would end the word early
                out.append(body[i])
                i += 1
        text = "".join(out)
    else:
        assert not re.search(r"[\s\"'\\;]", word), word
        text = word
    assert not re.search(r"(?<!%)%(?!%)", text.replace("%%", "")), word  # every % doubled
    return text.replace("%%", "%").replace("$$", "$")


def test_os_paths_with_odd_names_exist_here(tmp_path: Path) -> None:
    """The parametrised names are all valid file names on this file system."""
    for name in ODD_NAMES:
        (tmp_path / name).mkdir()
    assert len(os.listdir(tmp_path)) == len(ODD_NAMES)
