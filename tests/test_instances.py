"""Several cameras on one board: the fer-edge@.service template and install-service --instance."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fer_edge.cli import build_parser, main
from fer_edge.config import load_config
from fer_edge.errors import EdgeError
from fer_edge.tools import instances, service

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_UNIT = ROOT / "systemd" / "fer-edge.service"
SHIPPED_TEMPLATE = ROOT / "systemd" / "fer-edge@.service"
REGENERATE = ("python -c \"from pathlib import Path; from fer_edge.tools.instances import "
              "template_from_unit as t; Path('systemd/fer-edge@.service').write_text("
              "t(Path('systemd/fer-edge.service').read_text()))\"")


@pytest.fixture
def no_such_user(monkeypatch):
    """Plan as on a fresh machine: the service user does not exist yet."""
    def getpwnam(name: str):
        raise KeyError(name)
    monkeypatch.setattr(service.pwd, "getpwnam", getpwnam)


def plan(tmp_path: Path, *args: str) -> list[service.Step]:
    """The steps of `install-service --instance ...` for this machine's Python, planned, not applied."""
    parsed = build_parser().parse_args(["install-service", "--no-jetson", "--config-dir",
                                        str(tmp_path / "etc"), "--unit-dir", str(tmp_path / "units"), *args])
    steps = service.install_steps(python=sys.executable, config_dir=parsed.config_dir,
                                  unit_dir=parsed.unit_dir, user="fer-edge", jetson=parsed.jetson or False)
    return instances.instance_install_steps(steps, instance=parsed.instance, config_dir=parsed.config_dir,
                                            unit_dir=parsed.unit_dir)


def test_the_shipped_template_is_the_plain_unit_with_four_lines_changed() -> None:
    made = instances.template_from_unit(SHIPPED_UNIT.read_text())
    assert SHIPPED_TEMPLATE.read_text() == made, f"systemd/fer-edge@.service is out of date: {REGENERATE}"
    changed = set(made.splitlines()) - set(SHIPPED_UNIT.read_text().splitlines())
    assert {line for line in changed if not line.startswith("#")} == {
        "Description=fer-edge facial-expression recognition (%i)",
        "ExecStart=/opt/fer-edge/venv/bin/fer-edge run --config /etc/fer-edge/%i.toml",
        "SyslogIdentifier=fer-edge-%i"}


def test_a_unit_without_the_lines_the_template_changes_is_refused() -> None:
    with pytest.raises(EdgeError, match="has no line matching"):
        instances.template_from_unit(SHIPPED_UNIT.read_text().replace("SyslogIdentifier=fer-edge\n", ""))


@pytest.mark.usefixtures("checkout_anywhere")
def test_the_instance_plan_writes_its_own_config_and_the_template_and_enables_the_instance(
        tmp_path: Path, capsys, no_such_user) -> None:
    steps = plan(tmp_path, "--instance", "door")
    service.run_steps(steps, dry_run=True)
    out = capsys.readouterr().out
    host = socket.gethostname()
    etc, units = tmp_path / "etc", tmp_path / "units"
    assert f"write {etc}/door.toml (mode 0644, " in out and f"device_id {host}-door" in out
    assert f"write {units}/fer-edge@.service (mode 0644" in out
    assert f"--config {etc}/%i.toml\n" in out and "| SyslogIdentifier=fer-edge-%i\n" in out
    assert out.index("systemctl daemon-reload") < out.index("systemctl enable --now fer-edge@door.service")
    assert f"write {units}/fer-edge.service " not in out and "enable --now fer-edge.service" not in out
    assert f"{etc}/config.toml" not in out and "journalctl -u fer-edge@door -f" in out
    assert not any(tmp_path.iterdir()), "a dry run wrote to disk"

    # applied (into the temporary folders), the config names its device id and loads
    for step in steps:
        if isinstance(step, service.WriteFile):
            step.apply()
    config = load_config(etc / "door.toml", environ={})
    assert config.device_id == f"{host}-door"
    # the second instance's plan keeps the template's users running on the new unit
    again = plan(tmp_path, "--instance", "hall")
    assert service.RunCommand(("systemctl", "try-restart", "fer-edge@hall.service")) in again


@pytest.mark.usefixtures("checkout_anywhere")
def test_the_template_rendered_for_this_machine_passes_systemd_analyze_verify(tmp_path: Path,
                                                                             no_such_user) -> None:
    binary = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    if not os.access(binary, os.X_OK):
        pytest.fail("systemd-analyze is missing: apt-get install -y systemd")
    template = next(s for s in plan(tmp_path / "a b", "--instance", "door")
                    if isinstance(s, service.WriteFile) and s.path.name == "fer-edge@.service")
    assert '--config "' in template.content and '/%i.toml"' in template.content  # a space: quoted
    unit = tmp_path / "fer-edge@door.service"  # verify reads %i from the file's name
    unit.write_text(template.content)
    result = subprocess.run([binary, "verify", "--man=no", str(unit)], capture_output=True, text=True,
                            timeout=60)
    said = result.stdout + result.stderr
    assert result.returncode == 0 and not said.strip(), said


def test_uninstalling_an_instance_keeps_the_template_while_another_uses_it(tmp_path: Path) -> None:
    wants = tmp_path / "multi-user.target.wants"
    wants.mkdir()
    (tmp_path / "fer-edge@.service").write_text("[Service]\n")
    (wants / "fer-edge@door.service").symlink_to(tmp_path / "fer-edge@.service")
    (wants / "fer-edge@hall.service").symlink_to(tmp_path / "fer-edge@.service")
    steps = instances.instance_uninstall_steps(instance="door", unit_dir=tmp_path)
    disable = service.RunCommand(("systemctl", "disable", "--now", "fer-edge@door.service"), check=False)
    assert steps[0] == disable
    assert not any(isinstance(s, service.RemovePath) for s in steps)
    (wants / "fer-edge@hall.service").unlink()
    last = instances.instance_uninstall_steps(instance="door", unit_dir=tmp_path)
    assert service.RemovePath(tmp_path / "fer-edge@.service") in last


@pytest.mark.parametrize("name", ["", "a/b", "-x", "x" * 33, "door 1", "Tür"])
def test_a_bad_instance_name_is_one_line_and_no_traceback(tmp_path: Path, capsys, name: str) -> None:
    code = main(["install-service", f"--instance={name}", "--dry-run", "--unit-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"fer-edge: error: --instance {name!r} must be 1 to 32 letters"), err
    assert "Traceback" not in err
