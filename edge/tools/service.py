"""``fer-edge install-service`` and ``uninstall-service``: run the daemon under systemd.

Both commands first plan their work as a list of small steps (run a command, write a file,
remove a file); ``--dry-run`` prints the plan, a real run prints and applies the same plan,
so what a dry run shows is exactly what an install does.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import os
import pwd
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..config.secrets import PASSWORD_CREDENTIAL, TOKEN_CREDENTIAL
from ..errors import EdgeError
from ..shipped import shipped_path

UNIT_NAME = "fer-edge.service"
JETSON_DROPIN = "jetson.conf"
STATE_DIR = "/var/lib/fer-edge"  # StateDirectory=fer-edge in the unit
HOME_DIRS = ("/home/", "/root/", "/run/user/")  # hidden or read-only under ProtectHome=
TMP_DIRS = ("/tmp/", "/var/tmp/")  # replaced by empty private ones under PrivateTmp=yes
EX_NOPERM = 77
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
EXEC_UNSAFE = "\\\"'"  # what systemd's string_is_safe() refuses in an executable's path, besides controls


class NotRootError(EdgeError):
    """The command changes /etc and systemd and was not run as root."""

    exit_code = EX_NOPERM


@dataclass(frozen=True)
class RunCommand:
    """Run a program; ``check`` makes a non-zero exit status an error."""

    argv: tuple[str, ...]
    check: bool = True

    def describe(self, full: bool = False) -> str:
        """One line: the command as a shell would show it."""
        return f"run   {shlex.join(self.argv)}"

    def apply(self) -> None:
        """Run it, its output going straight to the terminal."""
        try:
            status = subprocess.run(self.argv, check=False).returncode
        except FileNotFoundError:
            raise EdgeError(f"{self.argv[0]} not found; is this a systemd-based Linux?") from None
        if self.check and status != 0:
            raise EdgeError(f"`{shlex.join(self.argv)}` failed with exit status {status}")


@dataclass(frozen=True)
class WriteFile:
    """Write a whole file atomically; ``exclusive`` never replaces one, ``origin`` stands for the text."""

    path: Path
    content: str
    mode: int = 0o644
    exclusive: bool = False
    origin: str = ""  # shown instead of the content, e.g. the example config it is copied from

    def describe(self, full: bool = False) -> str:
        """The path and mode; with ``full``, the content too (or where it comes from)."""
        line = f"write {self.path} (mode {self.mode:04o}, {len(self.content.splitlines())} lines)"
        if self.origin or not full:
            return line + (f" from {self.origin}" if self.origin else "")
        return line + ":\n" + "".join(f"      | {text}\n" for text in self.content.splitlines())

    def apply(self) -> None:
        """Write beside the target, then rename: systemd never reads half a unit."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        except OSError as exc:
            raise EdgeError(f"cannot write {self.path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.content)
                os.fchmod(handle.fileno(), self.mode)
            # link() fails if the file appeared since planning: a user's config is never replaced
            os.link(temporary, self.path) if self.exclusive else os.replace(temporary, self.path)
        except FileExistsError:
            print(f"      {self.path} exists now: kept it")
        finally:
            Path(temporary).unlink(missing_ok=True)


@dataclass(frozen=True)
class RemovePath:
    """Remove a file, or a directory only when it is empty (it may hold the user's overrides)."""

    path: Path

    def describe(self, full: bool = False) -> str:
        """One line: what is removed."""
        return f"rmdir {self.path} (if empty)" if self.path.is_dir() else f"rm    {self.path}"

    def apply(self) -> None:
        """Remove it; a missing path or a directory that is not empty is left alone."""
        with contextlib.suppress(OSError):
            self.path.rmdir() if self.path.is_dir() else self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Note:
    """Something the user should know; changes nothing."""

    text: str

    def describe(self, full: bool = False) -> str:
        """The note itself."""
        return f"note  {self.text}"

    def apply(self) -> None:
        """Nothing to do."""


Step = RunCommand | WriteFile | RemovePath | Note


def shipped_text(*parts: str) -> str:
    """A shipped file's text, e.g. ``shipped_text("systemd", "jetson.conf")`` (see fer_edge.shipped)."""
    return shipped_path(*parts).read_text(encoding="utf-8")


def unit_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be written into a unit: a control character (a newline would start a new
    directive) or a final backslash (it would join the next line to this one)."""
    if match := _CONTROL.search(path):
        return f"holds the control character U+{ord(match.group()):04X}"
    if path.endswith("\\"):
        return "ends with a backslash"
    return None


def check_unit_paths(**paths: str | Path | None) -> None:
    """EdgeError naming the first path (by its option) that ``unit_path_problem`` refuses."""
    for option, path in paths.items():
        if path is not None and (problem := unit_path_problem(str(path))):
            raise EdgeError(f"{option.replace('_', '-')} {str(path)!r} {problem}, which a systemd unit "
                            "cannot hold safely; choose a path without it")


def quote_exec_arg(arg: str, *, executable: bool = False) -> str:
    """One ExecStart= argument, escaped for systemd's own command-line syntax (systemd.service(5),
    systemd.syntax(7)): specifiers doubled, $ doubled (not in the executable, which systemd does
    not expand), quoted with C escapes where it holds anything but plain path characters."""
    if problem := unit_path_problem(arg):
        raise EdgeError(f"the argument {arg!r} {problem}; it cannot go into ExecStart=")
    if executable and (unsafe := set(arg) & set(EXEC_UNSAFE)):
        raise EdgeError(f"the path {arg!r} holds {' and '.join(sorted(unsafe))}, which systemd refuses in "
                        "the name of an executable; install fer-edge in a venv whose path has none "
                        "(/opt/fer-edge/venv)")
    arg = arg.replace("%", "%%") if executable else arg.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[\w@%+=:,./$-]+", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_start(python: str, config: Path) -> str:
    """The daemon's command line: the console script beside ``python``, else ``python -m fer_edge``."""
    script = Path(python).with_name("fer-edge")
    command = [str(script)] if os.access(script, os.X_OK) else [python, "-m", "fer_edge"]
    return " ".join([quote_exec_arg(command[0], executable=True),
                     *(quote_exec_arg(arg) for arg in [*command[1:], "run", "--config", str(config)])])


def under_home(path: str) -> bool:
    """Whether ProtectHome=yes would hide this path (or the file a symlink there points to)."""
    return any(p.startswith(HOME_DIRS) for p in (path + "/", os.path.realpath(path) + "/"))


def under_tmp(path: str) -> bool:
    """Whether PrivateTmp=yes would hide this path (or the file a symlink there points to)."""
    return any(p.startswith(TMP_DIRS) for p in (path + "/", os.path.realpath(path) + "/"))


def render_unit(template: str, *, command: str, user: str, group: str, credential: Path | None,
                protect_home: str = "yes", token: Path | None = None) -> str:
    """The shipped unit with ExecStart=, User=, Group=, ProtectHome= and LoadCredential= filled in:
    ``credential`` the MQTT password file, ``token`` the web page's token file (None: left off)."""
    settings = {"ExecStart=": command, "User=": user, "Group=": group, "ProtectHome=": protect_home}
    for name, path in ((PASSWORD_CREDENTIAL, credential), (TOKEN_CREDENTIAL, token)):
        if path is not None:
            check_unit_paths(credential=path)
            # taken to the end of the line, spaces and backslashes as they are; only specifiers expand
            settings[f"#LoadCredential={name}:"] = f"{name}:{str(path).replace('%', '%%')}"
    lines, found = template.splitlines(), set()
    for index, line in enumerate(lines):
        for prefix, value in settings.items():
            if line.startswith(prefix):
                lines[index] = prefix.lstrip("#").split("=")[0] + "=" + value
                found.add(prefix)
    if missing := settings.keys() - found:
        raise EdgeError(f"the shipped {UNIT_NAME} has no {', '.join(sorted(missing))} line")
    header = "# Written by `fer-edge install-service`; override with `systemctl edit fer-edge`.\n"
    return header + "\n".join(lines) + "\n"


def install_steps(*, python: str, config_dir: Path, unit_dir: Path, user: str, jetson: bool,
                  package_dir: Path | None = None) -> list[Step]:
    """Everything install-service does, in order, planned from the current state of the machine."""
    check_unit_paths(config_dir=config_dir, unit_dir=unit_dir, python=python)
    steps: list[Step] = []
    try:
        group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
        steps.append(Note(f"user {user} exists: kept as it is"))
    except KeyError:
        group = user  # useradd --user-group gives the new user a group of its own name
        argv = ["useradd", "--system", "--no-create-home", "--home-dir", STATE_DIR,
                "--shell", "/usr/sbin/nologin", "--user-group"]
        if "video" in {group.gr_name for group in grp.getgrall()}:
            argv += ["--groups", "video"]  # the unit adds video too (SupplementaryGroups=)
        steps.append(RunCommand((*argv, user)))

    config = config_dir / "config.toml"
    if config.exists():
        steps.append(Note(f"{config} exists: kept as it is"))
    else:
        example = shipped_text("config.example.toml")
        steps.append(WriteFile(config, example, 0o644, exclusive=True, origin="config.example.toml"))

    in_tmp = [str(p) for p in (python, package_dir) if p is not None and under_tmp(str(p))]
    if in_tmp:
        raise EdgeError(f"{in_tmp[0]} is under /tmp or /var/tmp, which the unit's PrivateTmp=yes replaces "
                        "with an empty directory: the service could not start (203/EXEC). Install fer-edge "
                        "in a venv under /opt/fer-edge and run that venv's fer-edge install-service")
    password, token = config_dir / PASSWORD_CREDENTIAL, config_dir / TOKEN_CREDENTIAL
    protect_home = "yes"
    in_home = [str(p) for p in (python, package_dir) if p is not None and under_home(str(p))]
    if in_home:
        protect_home = "read-only"
        steps.append(Note(f"{in_home[0]} is under a home directory, or links there: the unit gets "
                          f"ProtectHome=read-only, and {user} must be able to read it; "
                          "prefer /opt/fer-edge/venv"))
    unit = render_unit(shipped_text("systemd", UNIT_NAME),
                       command=exec_start(python, config), user=user, group=group,
                       credential=password if password.is_file() else None, protect_home=protect_home,
                       token=token if token.is_file() else None)
    unit_path = unit_dir / UNIT_NAME
    upgrade = unit_path.exists()
    steps.append(WriteFile(unit_path, unit, 0o644))
    if jetson:
        steps.append(WriteFile(unit_dir / f"{UNIT_NAME}.d" / JETSON_DROPIN,
                               shipped_text("systemd", JETSON_DROPIN), 0o644))
    steps.append(RunCommand(("systemctl", "daemon-reload")))
    steps.append(RunCommand(("systemctl", "enable", "--now", UNIT_NAME)))
    if upgrade:  # enable --now leaves a running service on its old code and unit
        steps.append(RunCommand(("systemctl", "try-restart", UNIT_NAME)))
    if not password.is_file():
        steps.append(Note(f"no {password}: the broker is used without a password. To set one, "
                          f"write it there (chmod 600) and run install-service again"))
    steps.append(Note(f"logs: journalctl -u fer-edge -f; settings: {config}"))
    return steps


def uninstall_steps(*, unit_dir: Path) -> list[Step]:
    """Stop, disable and remove the unit; configuration, user and state stay."""
    dropins = unit_dir / f"{UNIT_NAME}.d"
    steps: list[Step] = [RunCommand(("systemctl", "disable", "--now", UNIT_NAME), check=False),
                         RemovePath(unit_dir / UNIT_NAME)]
    if (dropins / JETSON_DROPIN).exists():
        steps += [RemovePath(dropins / JETSON_DROPIN), RemovePath(dropins)]
    steps.append(RunCommand(("systemctl", "daemon-reload")))
    steps.append(Note(f"kept: the configuration, the user and {STATE_DIR}; "
                      "remove them by hand if they are no longer wanted"))
    return steps


def run_steps(steps: list[Step], dry_run: bool) -> None:
    """Print each step; apply it too unless this is a dry run."""
    if dry_run:
        print("dry run: nothing is changed. The steps:")
    for step in steps:
        print(step.describe(full=dry_run), flush=True)
        if not dry_run:
            step.apply()


def _check_can_apply(dry_run: bool, command: str) -> None:
    if dry_run:
        return
    if os.geteuid() != 0:
        raise NotRootError(f"{command} changes /etc and systemd: run it with sudo "
                           "(or add --dry-run to see the steps)")
    if not Path("/run/systemd/system").is_dir():
        raise EdgeError(f"systemd is not running on this machine; {command} needs a systemd host")


def cmd_install_service(args: argparse.Namespace) -> int:
    """Create the user, install the config and the unit, then enable and start the service."""
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", args.user):
        raise EdgeError(f"--user {args.user!r} is not a valid system user name")
    _check_can_apply(args.dry_run, "install-service")
    jetson = Path("/etc/nv_tegra_release").exists() if args.jetson is None else args.jetson
    steps = install_steps(python=sys.executable, config_dir=args.config_dir.absolute(),
                          unit_dir=args.unit_dir.absolute(), user=args.user, jetson=jetson,
                          package_dir=Path(__file__).resolve().parents[1])
    run_steps(steps, args.dry_run)
    return 0


def cmd_uninstall_service(args: argparse.Namespace) -> int:
    """Stop, disable and remove the unit; keep configuration and user."""
    _check_can_apply(args.dry_run, "uninstall-service")
    run_steps(uninstall_steps(unit_dir=args.unit_dir.absolute()), args.dry_run)
    return 0
