"""Several cameras on one board: ``install-service --instance NAME`` and the ``fer-edge@.service`` template.

One daemon per camera, each a systemd instance ``fer-edge@NAME``: its own config file
(``/etc/fer-edge/NAME.toml``, whose ``mqtt.device_id`` install-service sets to ``<host>-NAME``),
its own device id and topics, its own journal identifier (``fer-edge-NAME``), the one unit
template and sandbox for all. The template is the plain unit with four lines changed
(``template_from_unit``); the shipped ``systemd/fer-edge@.service`` is that function's output,
which the tests hold it to, so the two cannot drift apart.

The plan reuses install-service's own (fer_edge.tools.service.install_steps) and changes the
steps that name the config file, the unit and the service.
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
from pathlib import Path

from ..errors import EdgeError
from .service import (
    JETSON_DROPIN,
    UNIT_NAME,
    Note,
    RemovePath,
    RunCommand,
    Step,
    WriteFile,
    _check_can_apply,
    install_steps,
    run_steps,
    shipped_text,
)

TEMPLATE_NAME = "fer-edge@.service"
HEADER = ("# fer-edge@NAME: the template of fer-edge.service for boards with several cameras: one\n"
          "# daemon per camera, reading /etc/fer-edge/NAME.toml (`fer-edge install-service --instance NAME`\n"
          "# writes it, with mqtt.device_id = \"<host>-NAME\"). Below, the plain unit's notes: read\n"
          "# config.toml as NAME.toml.")
INSTANCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")  # also a device id suffix and a file name


def template_from_unit(unit: str) -> str:
    """The ``fer-edge@.service`` template of a (shipped or rendered) ``fer-edge.service``."""
    changes = [
        (r"^# fer-edge: .*$", HEADER),
        (r"^Description=(.*)$", r"Description=\1 (%i)"),
        (r"^(ExecStart=.*--config \"?.*/)config\.toml(\"?)$", r"\1%i.toml\2"),
        (r"^SyslogIdentifier=fer-edge$", "SyslogIdentifier=fer-edge-%i"),
    ]
    for pattern, replacement in changes:
        unit, found = re.subn(pattern, replacement, unit, count=1, flags=re.MULTILINE)
        if not found:
            raise EdgeError(f"the {UNIT_NAME} unit has no line matching {pattern!r} to make its "
                            "template from")
    return unit.replace("systemctl edit fer-edge`", "systemctl edit fer-edge@NAME`")


def instance_config(example: str, device_id: str) -> str:
    """The example config with this instance's device id filled in."""
    text, found = re.subn(r'^device_id = ""', f'device_id = "{device_id}"', example, count=1,
                          flags=re.MULTILINE)
    if not found:
        raise EdgeError("the example config has no empty mqtt.device_id line to fill in")
    return text


def default_device_id(instance: str) -> str:
    """``<host name>-<instance>``, the host name made topic-safe as Config.device_id makes it."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '-', socket.gethostname())}-{instance}"


def instance_install_steps(steps: list[Step], *, instance: str, config_dir: Path,
                           unit_dir: Path) -> list[Step]:
    """install-service's plan (``steps``) turned into one for the instance ``fer-edge@<instance>``."""
    service = f"fer-edge@{instance}.service"
    config, config_file = config_dir / "config.toml", config_dir / f"{instance}.toml"
    template = unit_dir / TEMPLATE_NAME
    changed: list[Step] = []
    for step in steps:
        names_config = (isinstance(step, WriteFile) and step.path == config) or \
            (isinstance(step, Note) and step.text.startswith(f"{config} exists"))
        if names_config:
            if config_file.exists():
                changed.append(Note(f"{config_file} exists: kept as it is"))
            else:
                device_id = default_device_id(instance)
                text = instance_config(shipped_text("config.example.toml"), device_id)
                changed.append(WriteFile(config_file, text, 0o644, exclusive=True,
                                         origin=f"config.example.toml, device_id {device_id}"))
        elif isinstance(step, WriteFile) and step.path == unit_dir / UNIT_NAME:
            changed.append(WriteFile(template, template_from_unit(step.content), 0o644))
        elif isinstance(step, WriteFile) and step.path == unit_dir / f"{UNIT_NAME}.d" / JETSON_DROPIN:
            changed.append(WriteFile(unit_dir / f"{TEMPLATE_NAME}.d" / JETSON_DROPIN, step.content, 0o644))
        elif isinstance(step, RunCommand) and step.argv[-1] == UNIT_NAME:
            if step.argv[1] == "try-restart":
                continue  # decided again below, from the template's presence
            changed.append(RunCommand((*step.argv[:-1], service), step.check))
            if template.exists():  # enable --now leaves a running instance on its old code and unit
                changed.append(RunCommand(("systemctl", "try-restart", service)))
        elif isinstance(step, Note) and step.text.startswith("logs:"):
            changed.append(Note(f"logs: journalctl -u fer-edge@{instance} -f; settings: {config_file}. "
                                "Each instance needs its own source.spec (picamera2:1, csi:1, /dev/video2) "
                                "and, with the page on, its own http.port"))
        else:
            changed.append(step)
    if sum(isinstance(s, RunCommand) and s.argv[-1] == service for s in changed) == 0:
        raise EdgeError(f"install-service's plan has no `systemctl enable` of {UNIT_NAME} to turn "
                        f"into {service}")
    return changed


def instance_uninstall_steps(*, instance: str, unit_dir: Path) -> list[Step]:
    """Stop and disable one instance; the template goes too once no other instance is enabled."""
    service = f"fer-edge@{instance}.service"
    steps: list[Step] = [RunCommand(("systemctl", "disable", "--now", service), check=False)]
    wants = (unit_dir / "multi-user.target.wants").glob("fer-edge@*.service")
    others = [p.name for p in wants if p.name != service]
    if others:
        steps.append(Note(f"kept {unit_dir / TEMPLATE_NAME}: {', '.join(sorted(others))} still use it"))
    else:
        dropins = unit_dir / f"{TEMPLATE_NAME}.d"
        steps.append(RemovePath(unit_dir / TEMPLATE_NAME))
        if (dropins / JETSON_DROPIN).exists():
            steps += [RemovePath(dropins / JETSON_DROPIN), RemovePath(dropins)]
        steps.append(RunCommand(("systemctl", "daemon-reload")))
    steps.append(Note(f"kept: its configuration ({instance}.toml), the user and the state directory"))
    return steps


def check_instance_name(instance: str) -> None:
    """EdgeError unless ``instance`` is 1-32 letters, digits, _ or - (starting with a letter or digit)."""
    if not INSTANCE_NAME.fullmatch(instance):
        raise EdgeError(f"--instance {instance!r} must be 1 to 32 letters, digits, _ or -, starting with "
                        "a letter or digit (it names the service, its config file and its device id)")


def cmd_install_instance(args: argparse.Namespace) -> int:
    """``install-service --instance NAME``."""
    check_instance_name(args.instance)
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", args.user):
        raise EdgeError(f"--user {args.user!r} is not a valid system user name")
    _check_can_apply(args.dry_run, "install-service")
    jetson = Path("/etc/nv_tegra_release").exists() if args.jetson is None else args.jetson
    config_dir, unit_dir = args.config_dir.absolute(), args.unit_dir.absolute()
    steps = install_steps(python=sys.executable, config_dir=config_dir, unit_dir=unit_dir,
                          user=args.user, jetson=jetson, package_dir=Path(__file__).resolve().parents[1])
    run_steps(instance_install_steps(steps, instance=args.instance, config_dir=config_dir,
                                     unit_dir=unit_dir), args.dry_run)
    return 0


def cmd_uninstall_instance(args: argparse.Namespace) -> int:
    """``uninstall-service --instance NAME``."""
    check_instance_name(args.instance)
    _check_can_apply(args.dry_run, "uninstall-service")
    run_steps(instance_uninstall_steps(instance=args.instance, unit_dir=args.unit_dir.absolute()),
              args.dry_run)
    return 0
