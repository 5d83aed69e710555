"""The systemd side: the shipped unit, the sd_notify protocol and install-service's plan."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fer_edge.cli import build_parser
from fer_edge.notify import SystemdNotifier
from fer_edge.tools import service

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_UNIT = ROOT / "systemd" / "fer-edge.service"
MAX_EXPOSURE = 3.0
VENV_PYTHON = "/opt/fer-edge/venv/bin/python"


def systemd_analyze(*args: str) -> subprocess.CompletedProcess:
    """Run systemd-analyze; a machine without it fails the test with the package to install."""
    binary = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    if not os.access(binary, os.X_OK):
        pytest.fail("systemd-analyze is missing: apt-get install -y systemd")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def rendered_unit(directory: Path, *, jetson: bool = False, credential: bool = False) -> Path:
    """The unit as install-service writes it for this machine's Python, so verify can run it."""
    unit = directory / "fer-edge.service"
    command = f"{sys.executable} -m fer_edge run --config /etc/fer-edge/config.toml"
    password = Path("/etc/fer-edge/mqtt_password") if credential else None
    unit.write_text(service.render_unit(SHIPPED_UNIT.read_text(), command=command, user="fer-edge",
                                        group="fer-edge", credential=password))
    if jetson:
        dropins = directory / "fer-edge.service.d"
        dropins.mkdir()
        shutil.copy(ROOT / "systemd" / "jetson.conf", dropins / "jetson.conf")
    return unit


def exposure(unit: Path) -> float:
    """The overall exposure systemd-analyze security gives a unit file (0 safest, 10 worst)."""
    result = systemd_analyze("security", "--offline=true", str(unit))
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", last)
    assert match, f"no exposure in systemd-analyze output (systemd >= 252 needed for --offline):\n" \
                  f"{result.stdout}{result.stderr}"
    return float(match.group(1))


# --- the unit file -------------------------------------------------------------------------

@pytest.mark.parametrize("variant", [{}, {"credential": True}, {"jetson": True}],
                         ids=["plain", "with-credential", "jetson"])
def test_installed_unit_passes_systemd_analyze_verify(tmp_path, variant):
    unit = rendered_unit(tmp_path, **variant)
    result = systemd_analyze("verify", "--man=no", str(unit))
    # verify exits 0 on unknown keys and bad values too: its output must be empty as well
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), \
        result.stdout + result.stderr


def test_verify_would_catch_a_broken_unit(tmp_path):
    unit = rendered_unit(tmp_path)
    unit.write_text(unit.read_text() + "ProtectSytem=strict\n")
    result = systemd_analyze("verify", "--man=no", str(unit))
    assert "Unknown key" in result.stdout + result.stderr


def test_shipped_unit_verifies_apart_from_its_placeholder_exec_start():
    result = systemd_analyze("verify", "--man=no", str(SHIPPED_UNIT))
    # on a machine without /opt/fer-edge/venv, that missing binary is the one complaint allowed
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and "/opt/fer-edge/venv/bin/fer-edge is not executable" not in line]
    assert problems == []


def test_rendering_fails_loudly_if_the_unit_loses_a_line_install_service_rewrites():
    template = SHIPPED_UNIT.read_text().replace("\nGroup=fer-edge", "\n")
    with pytest.raises(service.EdgeError, match="has no Group= line"):
        service.render_unit(template, command="/bin/true", user="u", group="g", credential=None)


@pytest.mark.parametrize("jetson", [False, True], ids=["shipped", "jetson"])
def test_sandbox_exposure_is_at_most_3(tmp_path, jetson):
    level = exposure(rendered_unit(tmp_path, jetson=jetson))
    assert level <= MAX_EXPOSURE, f"exposure {level} > {MAX_EXPOSURE}: the sandbox was loosened"


def test_unit_keeps_the_settings_cameras_and_systemd_rely_on():
    settings = [line for line in SHIPPED_UNIT.read_text().splitlines() if not line.startswith("#")]
    for line in ("WantedBy=multi-user.target", "Type=notify", "NotifyAccess=main", "WatchdogSec=30",
                 "RestartPreventExitStatus=78", "Restart=on-failure", "SupplementaryGroups=video",
                 "DevicePolicy=closed", "DeviceAllow=char-video4linux rw", "DeviceAllow=char-media rw",
                 "DeviceAllow=char-dma_heap rw", "ProtectSystem=strict", "CapabilityBoundingSet="):
        assert line in settings
    # each of these breaks a camera stack or the interpreter's CPU detection (see the unit)
    for key in ("ProcSubset=", "MemoryDenyWriteExecute=", "PrivateDevices=", "PrivateUsers="):
        assert not any(line.startswith(key) for line in settings), key


# --- sd_notify ------------------------------------------------------------------------------

@pytest.fixture
def notify_socket(tmp_path):
    """A datagram socket standing in for systemd's notification socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(5)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on the socket."""
    messages = []
    sock.setblocking(False)
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except BlockingIOError:
        return messages
    finally:
        sock.settimeout(5)


def test_ready_and_stopping_reach_the_socket(notify_socket):
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": notify_socket.getsockname()})
    assert notifier.enabled and notifier.watchdog_interval is None
    notifier.ready(status="reading /dev/video0")
    notifier.stopping()
    assert received(notify_socket) == ["READY=1\nSTATUS=reading /dev/video0", "STOPPING=1"]


def test_watchdog_pings_at_half_the_timeout(notify_socket):
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": notify_socket.getsockname(),
                                                 "WATCHDOG_USEC": "30000000"})
    assert notifier.watchdog_interval == 15.0
    sent = [notifier.watchdog(status=f"{t} s", now=t) for t in (100.0, 101.0, 114.9, 115.0, 129.0, 130.5)]
    assert sent == [True, False, False, True, False, True]
    assert received(notify_socket) == ["WATCHDOG=1\nSTATUS=100.0 s", "WATCHDOG=1\nSTATUS=115.0 s",
                                       "WATCHDOG=1\nSTATUS=130.5 s"]


def test_without_a_watchdog_the_status_is_sent_every_5_seconds(notify_socket):
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": notify_socket.getsockname()})
    sent = [notifier.watchdog(status="1.0 fps, 0 faces", now=t) for t in (0.0, 4.9, 5.0)]
    assert sent == [True, False, True]
    assert notifier.watchdog(now=20.0) is False  # nothing to say
    assert received(notify_socket) == ["STATUS=1.0 fps, 0 faces"] * 2


def test_status_stays_on_one_line(notify_socket):
    notifier = SystemdNotifier(notify_socket.getsockname())
    notifier.ready(status="line one\nREADY=0")
    assert received(notify_socket) == ["READY=1\nSTATUS=line one READY=0"]


def test_watchdog_of_another_process_is_ignored(notify_socket):
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": notify_socket.getsockname(),
                                                 "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval is None
    mine = SystemdNotifier.from_environment({"NOTIFY_SOCKET": notify_socket.getsockname(),
                                             "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval == 1.0


def test_abstract_socket_names(tmp_path):
    name = f"fer-edge-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        SystemdNotifier.from_environment({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"


def test_everything_is_a_no_op_outside_systemd():
    notifier = SystemdNotifier.from_environment({"WATCHDOG_USEC": "30000000"})
    assert not notifier.enabled
    notifier.ready(status="x")
    notifier.stopping()
    assert notifier.watchdog(status="x", now=0.0) is False
    assert SystemdNotifier.from_environment({}).watchdog_interval is None


def test_a_vanished_socket_is_not_an_error(tmp_path):
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "gone"),
                                                 "WATCHDOG_USEC": "1000000"})
    notifier.ready()
    assert notifier.watchdog(now=1.0) is False  # send failed, logged at debug, no exception


# --- install-service / uninstall-service ----------------------------------------------------

@pytest.fixture
def no_such_user(monkeypatch):
    """Plan as on a fresh machine: the service user does not exist yet."""
    def getpwnam(name: str):
        raise KeyError(name)
    monkeypatch.setattr(service.pwd, "getpwnam", getpwnam)


def test_install_dry_run_for_a_venv_shows_every_step_and_writes_nothing(tmp_path, capsys, no_such_user):
    config_dir, unit_dir = tmp_path / "etc" / "fer-edge", tmp_path / "systemd"
    steps = service.install_steps(python=VENV_PYTHON, config_dir=config_dir, unit_dir=unit_dir,
                                  user="fer-edge", jetson=False)
    service.run_steps(steps, dry_run=True)
    out = capsys.readouterr().out

    assert out.startswith("dry run: nothing is changed")
    assert "run   useradd --system --no-create-home --home-dir /var/lib/fer-edge " \
           "--shell /usr/sbin/nologin --user-group" in out
    assert re.search(r"useradd .*--groups video fer-edge\n", out)
    assert f"write {config_dir}/config.toml (mode 0644, " in out and "from config.example.toml" in out
    assert f"write {unit_dir}/fer-edge.service (mode 0644" in out
    assert f"| ExecStart={VENV_PYTHON} -m fer_edge run --config {config_dir}/config.toml\n" in out
    assert "| User=fer-edge\n" in out and "| ProtectHome=yes\n" in out
    assert "| #LoadCredential=mqtt_password:" in out  # no password file: left off
    assert out.index("systemctl daemon-reload") < out.index("systemctl enable --now fer-edge.service")
    assert "fer-edge.service.d/jetson.conf (mode" not in out and "try-restart" not in out
    assert not any(tmp_path.iterdir()), "a dry run wrote to disk"


def test_install_plan_uses_an_existing_config_password_and_the_jetson_dropin(tmp_path, no_such_user):
    config_dir, unit_dir = tmp_path / "etc", tmp_path / "systemd"
    config_dir.mkdir()
    (config_dir / "config.toml").write_text("log_level = 'debug'\n")
    (config_dir / "mqtt_password").write_text("secret\n")
    (config_dir / "http_token").write_text("a-token-of-sixteen-characters\n")
    steps = service.install_steps(python=VENV_PYTHON, config_dir=config_dir, unit_dir=unit_dir,
                                  user="fer-edge", jetson=True)
    writes = {step.path: step for step in steps if isinstance(step, service.WriteFile)}
    assert config_dir / "config.toml" not in writes  # never overwritten
    unit = writes[unit_dir / "fer-edge.service"].content
    assert f"\nLoadCredential=mqtt_password:{config_dir}/mqtt_password\n" in unit
    assert f"\nLoadCredential=http_token:{config_dir}/http_token\n" in unit
    assert "sixteen" not in unit
    assert "secret" not in unit
    assert writes[unit_dir / "fer-edge.service.d" / "jetson.conf"].content == \
        service.shipped_text("systemd", "jetson.conf")


def test_exec_start_quotes_odd_paths_and_prefers_the_console_script(tmp_path):
    config = Path("/etc/fer edge/100%.toml")
    assert service.exec_start("/opt/my venv/bin/python", config) == \
        '"/opt/my venv/bin/python" -m fer_edge run --config "/etc/fer edge/100%%.toml"'
    script = tmp_path / "fer-edge"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert service.exec_start(str(tmp_path / "python"), Path("/etc/fer-edge/config.toml")) == \
        f"{script} run --config /etc/fer-edge/config.toml"


def test_a_python_under_home_relaxes_protect_home(tmp_path, no_such_user):
    steps = service.install_steps(python="/home/pi/venv/bin/python", config_dir=tmp_path / "etc",
                                  unit_dir=tmp_path / "systemd", user="fer-edge", jetson=False)
    unit = next(s for s in steps if isinstance(s, service.WriteFile) and s.path.name == "fer-edge.service")
    assert "\nProtectHome=read-only\n" in unit.content
    assert any("under a home directory" in step.describe() for step in steps)


@pytest.mark.parametrize("python", ["/tmp/venv/bin/python", "/var/tmp/fer/venv/bin/python"])
def test_a_python_under_tmp_is_refused_before_writing_a_unit_that_cannot_start(tmp_path, no_such_user,
                                                                                python):
    with pytest.raises(service.EdgeError) as error:
        service.install_steps(python=python, config_dir=tmp_path / "etc", unit_dir=tmp_path / "systemd",
                              user="fer-edge", jetson=False)
    assert str(error.value).startswith(f"{python} is under /tmp or /var/tmp, which the unit's PrivateTmp=yes")
    assert "203/EXEC" in str(error.value) and "/opt/fer-edge" in str(error.value)


def test_uninstall_keeps_config_and_user(tmp_path, capsys):
    unit_dir = tmp_path / "systemd"
    (unit_dir / "fer-edge.service.d").mkdir(parents=True)
    (unit_dir / "fer-edge.service").write_text("[Service]\n")
    (unit_dir / "fer-edge.service.d" / "jetson.conf").write_text("[Service]\n")
    (unit_dir / "fer-edge.service.d" / "override.conf").write_text("[Service]\n")  # the user's own
    steps = service.uninstall_steps(unit_dir=unit_dir)
    assert steps[0] == service.RunCommand(("systemctl", "disable", "--now", "fer-edge.service"), check=False)
    for step in steps:
        if isinstance(step, service.RemovePath):
            step.apply()
    assert sorted(p.name for p in unit_dir.rglob("*")) == ["fer-edge.service.d", "override.conf"]
    service.run_steps(steps, dry_run=True)
    assert "kept: the configuration, the user" in capsys.readouterr().out


@pytest.mark.slow
def test_unit_and_dropin_ship_as_package_data(tmp_path):
    """What `pip install .` copies: install-service must find the unit without the source tree."""
    build = tmp_path / "build"
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build)], cwd=ROOT,
                   check=True, capture_output=True, timeout=120)
    probe = ("from fer_edge.tools import service; "
             "print(len(service.shipped_text('systemd', 'fer-edge.service')), "
             "len(service.shipped_text('systemd', 'jetson.conf')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(build)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(len(SHIPPED_UNIT.read_text())),
                                     str(len((ROOT / "systemd" / "jetson.conf").read_text()))]


def test_write_file_is_atomic_with_its_mode_and_never_replaces_exclusive_files(tmp_path):
    target = tmp_path / "a" / "config.toml"
    service.WriteFile(target, "one\n", 0o640).apply()
    assert target.read_text() == "one\n" and target.stat().st_mode & 0o777 == 0o640
    service.WriteFile(target, "two\n", 0o644, exclusive=True).apply()
    assert target.read_text() == "one\n"
    assert [p.name for p in target.parent.iterdir()] == ["config.toml"]  # no temporary left


def test_cli_refuses_without_root_and_validates_the_user(monkeypatch, tmp_path):
    parser = build_parser()
    monkeypatch.setattr(service.os, "geteuid", lambda: 1000)
    args = parser.parse_args(["install-service", "--unit-dir", str(tmp_path)])
    with pytest.raises(service.NotRootError, match="run it with sudo") as refused:
        args.func(args)
    assert refused.value.exit_code == 77
    args = parser.parse_args(["install-service", "--dry-run", "--user", "bad\nUser=root"])
    with pytest.raises(service.EdgeError, match="not a valid system user name"):
        args.func(args)


@pytest.mark.usefixtures("checkout_anywhere")
def test_cli_dry_run_uses_the_running_python(tmp_path, capsys, no_such_user):
    parser = build_parser()
    args = parser.parse_args(["install-service", "--dry-run", "--no-jetson",
                              "--config-dir", str(tmp_path / "etc"), "--unit-dir", str(tmp_path / "u")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"| ExecStart={Path(sys.executable).parent}/" in out
    assert not any(tmp_path.iterdir())


# --- end to end: needs edge/cli.py to drive SystemdNotifier (READY, WATCHDOG, STOPPING) ------

@pytest.mark.slow
def test_daemon_notifies_systemd_end_to_end(tmp_path, notify_socket, mosquitto):
    """The real daemon under a fake systemd: READY=1, WATCHDOG=1 while frames flow, STOPPING=1."""
    from devkit.media import make_face_video

    video = make_face_video(tmp_path / "face.avi", frames=120, fps=15)  # 8 s, played in real time
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "1000000",
           "INVOCATION_ID": "test"}
    env.pop("WATCHDOG_PID", None)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "fer_edge", "run", "--source", str(video), "--mqtt-host", mosquitto.host,
         "--mqtt-port", str(mosquitto.port), "--device-id", "notify-test"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any("READY=1" in m for m in messages) and time.monotonic() < deadline:
            try:
                messages.append(notify_socket.recv(4096).decode())
            except TimeoutError:
                assert daemon.poll() is None, daemon.communicate()[0]
        assert any(m.startswith("READY=1") for m in messages), messages
        while sum(m.startswith("WATCHDOG=1") for m in messages) < 3 and time.monotonic() < deadline:
            try:  # pings every 0.5 s while frames flow
                messages.append(notify_socket.recv(4096).decode())
            except TimeoutError:
                assert daemon.poll() is None, daemon.communicate()[0]
        daemon.send_signal(signal.SIGTERM)
        output = daemon.communicate(timeout=15)[0]
    finally:
        if daemon.poll() is None:
            daemon.kill()
    messages += received(notify_socket)
    assert daemon.returncode == 0, output
    pings = [m for m in messages if m.startswith("WATCHDOG=1")]
    assert len(pings) >= 3, messages
    assert re.search(r"STATUS=\d+\.\d fps, \d+ faces?", pings[-1]), pings
    assert messages[-1] == "STOPPING=1", messages
    assert messages.index(next(m for m in messages if m.startswith("READY=1"))) < messages.index(pings[0])
