"""The steps of ``make check-arm64``, run by scripts/check_arm64.sh once the root filesystem is ready.

    python scripts/arm64/check.py --rootfs DIR --work DIR [--target NAME ...] [--score-tolerance X]

Runs in the host venv (fer-edge installed natively, scikit-image for the inputs). It makes the
inputs from the astronaut photo, runs ``predict`` and ``run --no-realtime`` natively as the
reference, then installs fer-edge in the arm64 root filesystem with the README's steps and runs
each step there under QEMU. The faces ``predict`` prints and the MQTT events of ``run`` must
have the same frames, track ids, boxes, labels and reasons as the native run, and scores within
1e-6. Each step prints one line, ``ok`` or ``FAIL`` with its cause; the last line is the
verdict; the exit status is 1 if any step failed.

Targets (``--target``, default all):
  pi-a72, pi-a76  the README's Raspberry Pi steps (OpenCV and numpy 2 from pip), Pi 4 and Pi 5 CPUs
  jetson          the README's Jetson steps on Debian's python3-opencv (numpy 1.x, no cv2.data),
                  standing in for JetPack's; Cortex-A76, QEMU 7.2's nearest to Orin's A78AE
  jetson-numpy2   the same with numpy 2 upgraded into the venv: Debian's cv2 cannot be imported,
                  so only the commands that need no camera run, and they must work
picamera2 is not in the root filesystem (only the Raspberry Pi archive has it): a command that
imported it eagerly fails here.

The comparisons run Haar (``--detector haar``), whose integer cascade gives the same boxes on
both sides. YuNet, the default, is a float network: under emulation it gave the same boxes and
labels in every event but scores up to 1.2e-3 apart (OpenCV's DNN and resize kernels differ
between NEON and AVX), and Debian's OpenCV 4.6 (the Jetson stand-in) cannot run its 2023 model
at all (JetPack 6 has 4.8): fer-edge then says so and names detector.type = "haar".

Scores agree to 1e-6 for these inputs, but that is not a law: the crops are bit-identical on
both sides, while XNNPACK's int8 kernels for arm64 and x86-64 (Zen 4 here) can round an output
one step (1/256) apart; a 48x48 crop of the astronaut without predict's margin does. Such a
difference shows as a FAIL naming the score; judge it against that step (``--score-tolerance``).
XNNPACK must start on both sides: under QEMU it needs /sys and an ARM /proc/cpuinfo; without
them LiteRT runs other kernels than a Pi would, or crashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import paho.mqtt.client as mqtt
from compare import compare_events, compare_predict, describe_events, predict_lines
from guest import VERSIONS_PROBE, Rootfs, failure, install_commands
from media import VIDEO_NAME, write_photos, write_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for devkit
from devkit.broker import MosquittoBroker  # noqa: E402

XNNPACK_STARTED = "Created TensorFlow Lite XNNPACK delegate"  # LiteRT's log line
DETECTOR = "haar"  # bit-identical across CPUs; see the module's docstring

# Versions the venvs in the root filesystem take from the native venv, so that both sides run
# the same code; the Jetson venvs take numpy from their README step and OpenCV from apt.
PINNED = ("ai-edge-litert", "numpy", "opencv-python-headless", "paho-mqtt")
PINNED_JETSON = ("ai-edge-litert", "paho-mqtt")
PI_ARCHIVE_ONLY = {"python3-picamera2"}  # README apt packages that Debian has not


@dataclass(frozen=True)
class Target:
    """A way of installing fer-edge in the root filesystem, and the CPU model to run it on."""

    name: str
    cpu: str
    readme_section: str  # the README heading whose sh block holds the install steps
    venv: str
    extra_install: tuple[str, ...] = ()  # a pip install after the README's steps
    camera: bool = True  # False: only the commands that need no camera (cv2 is unusable)
    jetson: bool = False


TARGETS = {t.name: t for t in (
    Target("pi-a72", "cortex-a72", "### Raspberry Pi", "/opt/fer-edge/venv"),
    Target("pi-a76", "cortex-a76", "### Raspberry Pi", "/opt/fer-edge/venv"),
    Target("jetson", "cortex-a76", "### Jetson", "/opt/fer-edge/venv-jetson", jetson=True),
    Target("jetson-numpy2", "cortex-a76", "### Jetson", "/opt/fer-edge/venv-jetson-numpy2",
           extra_install=("numpy>=2",), camera=False, jetson=True),
)}


@dataclass
class Result:
    """A step's outcome: one line of the report."""

    target: str
    step: str
    ok: bool
    detail: str

    def line(self) -> str:
        """``ok   TARGET STEP detail`` or ``FAIL ...``."""
        return f"{'ok  ' if self.ok else 'FAIL'} {self.target:<14} {self.step:<16} {self.detail}"


@dataclass
class Check:
    """The run's state: the root filesystem, the inputs, the native reference, the results so far."""

    rootfs: Rootfs
    tolerance: float
    source_hash: str = ""  # of the checkout's copy, before any install builds in it
    photos: list[Path] = field(default_factory=list)
    video: Path = field(default_factory=Path)
    native_predict: dict[str, dict] = field(default_factory=dict)
    native_events: list[dict] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def report(self, target: str, step: str, ok: bool, detail: str) -> bool:
        """Record a step's result and print its line at once."""
        result = Result(target, step, ok, detail)
        with self.lock:
            self.results.append(result)
            print(result.line(), flush=True)
        return ok


# ---- installing -------------------------------------------------------------------------------

def tree_hash(folder: Path) -> str:
    """A hash of every file's path and content under a folder."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def write_pins(work: Path, names: tuple[str, ...]) -> Path:
    """A pip constraints file: the native venv's versions of these packages."""
    path = work / f"native-versions-{len(names)}.txt"
    path.write_text("".join(f"{name}=={version(name)}\n" for name in names))
    return path


def apt_note(rootfs: Rootfs, apt_lines: list[list[str]]) -> tuple[bool, str]:
    """The README's apt packages: in the root filesystem (built with them), or Pi-only and left out."""
    status = (rootfs.path / "var/lib/dpkg/status").read_text()
    installed = set(re.findall(r"^Package: (\S+)\nStatus: install ok installed$", status, re.M))
    wanted = [word for words in apt_lines for word in words[2:] if not word.startswith("-")]
    missing = [name for name in wanted if name not in installed]
    unexpected = [name for name in missing if name not in PI_ARCHIVE_ONLY]
    if unexpected:
        return False, f"the README's apt step needs {', '.join(unexpected)}; add to check_arm64.sh's PACKAGES"
    note = f"; apt: {', '.join(name for name in wanted if name in installed)} in the rootfs"
    return True, note + (f", {', '.join(missing)} left out (Raspberry Pi archive only)" if missing else "")


def install(check: Check, target: Target) -> bool:
    """Install fer-edge for a target with the README's steps, unless they ran on this checkout before.

    A venv made by other steps is made anew; where only the checkout changed, only the steps
    that install it run again.
    """
    rootfs, source = check.rootfs, "/work/src"
    commands, apt_lines = install_commands(target.readme_section, target.venv, source)
    commands += [[f"{target.venv}/bin/pip", "install", spec] for spec in target.extra_install]
    recipe = hashlib.sha256(json.dumps(commands).encode()).hexdigest()
    stamp = rootfs.path / target.venv.lstrip("/") / ".check-arm64"
    done = stamp.read_text().split() if stamp.exists() else []
    if done[:1] != [recipe]:
        subprocess.run(["rm", "-rf", str(stamp.parent)], check=True)
        todo, why = commands, ""
    elif done[1:] != [check.source_hash]:
        todo = [words for words in commands if source in words]
        why = " (the checkout changed, not its dependencies)"
    else:
        todo, why = [], " (they ran on this checkout before)"
    ok, note = apt_note(rootfs, apt_lines)
    if not ok:
        return check.report(target.name, "install", False, note)
    started = time.monotonic()
    pins = write_pins(rootfs.work, PINNED_JETSON if target.jetson else PINNED)
    if todo:
        stamp.unlink(missing_ok=True)  # a venv left half-installed is made anew next time
    for words in todo:
        result = rootfs.run(target.cpu, words, env={"PIP_CONSTRAINT": rootfs.guest(pins)})
        if result.returncode != 0:
            return check.report(target.name, "install", False, f"`{' '.join(words)}` {failure(result)}")
    stamp.write_text(f"{recipe} {check.source_hash}\n")
    probe = rootfs.run(target.cpu, [f"{target.venv}/bin/python", "-c", VERSIONS_PROBE])
    how = f"README steps: {len(todo)} of {len(commands)} run in {time.monotonic() - started:.0f} s{why}"
    return check.report(target.name, "install", probe.returncode == 0,
                        f"{how}: {probe.stdout.strip() or failure(probe)}{note}")


# ---- the steps ----------------------------------------------------------------------------------

def fer_edge(target: Target) -> str:
    """The command in the target's venv."""
    return f"{target.venv}/bin/fer-edge"


def step_version(check: Check, target: Target) -> None:
    """``fer-edge --version`` prints the installed version."""
    expected = f"fer-edge {version('fer-edge')}"
    result = check.rootfs.run(target.cpu, [fer_edge(target), "--version"])
    got = result.stdout.strip()
    ok = result.returncode == 0 and got == expected
    check.report(target.name, "--version", ok, got if ok or result.returncode == 0 else failure(result))


def step_check_config(check: Check, target: Target) -> None:
    """``check-config`` accepts the example config."""
    example = "/work/src/edge/config.example.toml"
    result = check.rootfs.run(target.cpu, [fer_edge(target), "check-config", example])
    ok = result.returncode == 0 and result.stdout.strip() == f"{example}: OK"
    check.report(target.name, "check-config", ok, result.stdout.strip() if ok else failure(result))


def step_install_service(check: Check, target: Target) -> None:
    """``install-service --dry-run`` plans a unit that runs this venv's fer-edge."""
    argv = [fer_edge(target), "install-service", "--dry-run", *(["--jetson"] if target.jetson else [])]
    result = check.rootfs.run(target.cpu, argv)
    # the console script, or `python -m fer_edge` where os.access cannot see it (under proot 5.1,
    # which does not translate faccessat2's path)
    exec_start = re.search(rf"ExecStart=({re.escape(target.venv)}/bin/(fer-edge|python3? -m fer_edge)) run ",
                           result.stdout)
    wanted = ["dry run: nothing is changed", "/etc/systemd/system/fer-edge.service",
              *(["jetson.conf"] if target.jetson else [])]
    missing = [w for w in wanted if w not in result.stdout]
    if result.returncode != 0:
        detail = failure(result)
    elif missing or exec_start is None:
        detail = f"the plan lacks {missing or f'ExecStart={target.venv}/bin/...'}"
    else:
        detail = f"{len(result.stdout.splitlines())} lines, ExecStart={exec_start.group(1)} run"
        detail += " and the Jetson drop-in" if target.jetson else ""
    check.report(target.name, "install-service", bool(result.returncode == 0 and not missing and exec_start),
                 detail)


def step_predict(check: Check, target: Target) -> None:
    """``predict`` on the photos gives the native faces, boxes, labels and scores."""
    photos = [check.rootfs.guest(photo) for photo in check.photos]
    result = check.rootfs.run(target.cpu, [fer_edge(target), "predict", "--detector", DETECTOR, *photos])
    if result.returncode != 0:
        check.report(target.name, "predict", False, failure(result))
        return
    ours = predict_lines(result.stdout)
    diff = compare_predict(ours, check.native_predict, check.tolerance)
    if XNNPACK_STARTED not in result.stderr:
        diff.problems.insert(0, "LiteRT did not start XNNPACK (it ran other kernels than a Pi)")
    faces = sum(len(item.get("faces", [])) for item in ours.values())
    summary = diff.summary(f"{len(ours)} photos, {faces} faces")
    check.report(target.name, "predict", not diff.problems, summary)


def collect_events(broker: MosquittoBroker, device_id: str, run: Callable[[], subprocess.CompletedProcess],
                   ) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run the daemon (``run()``) while a subscriber gathers its events, until it says offline."""
    events: list[dict] = []
    offline = threading.Event()

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic.endswith("/emotion"):
            events.append(json.loads(message.payload))
        elif message.topic.endswith("/status") and message.payload == b"offline":
            offline.set()

    subscribed = threading.Event()
    viewer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"check-arm64-{device_id}")
    viewer.on_message = on_message
    viewer.on_subscribe = lambda *_args: subscribed.set()
    viewer.connect(broker.host, broker.port)
    viewer.subscribe(f"fer-edge/{device_id}/#", qos=1)
    viewer.loop_start()
    try:
        subscribed.wait(timeout=5)  # in place before the daemon publishes
        result = run()
        offline.wait(timeout=10)
    finally:
        viewer.loop_stop()
        viewer.disconnect()
    return result, events


def run_args(video: str, broker: MosquittoBroker, device_id: str) -> list[str]:
    """``fer-edge run``'s arguments: the video, every frame and every face, the local broker."""
    return ["run", "--source", video, "--detector", DETECTOR, "--no-realtime", "--publish", "every",
            "--mqtt-host", broker.host, "--mqtt-port", str(broker.port), "--device-id", device_id]


def step_run(check: Check, target: Target, broker: MosquittoBroker) -> None:
    """``run --no-realtime`` on the video publishes the native events."""
    device_id = f"arm64-{target.name}"
    argv = [fer_edge(target), *run_args(check.rootfs.guest(check.video), broker, device_id)]
    started = time.monotonic()
    result, events = collect_events(broker, device_id, lambda: check.rootfs.run(target.cpu, argv))
    took = time.monotonic() - started
    if result.returncode != 0:
        check.report(target.name, "run", False, failure(result))
        return
    diff = compare_events(events, check.native_events, check.tolerance)
    check.report(target.name, "run", not diff.problems,
                 diff.summary(f"{describe_events(events)} ({took:.0f} s emulated; no speed claim)"))


# ---- the native reference -----------------------------------------------------------------------

def native_reference(check: Check, broker: MosquittoBroker) -> bool:
    """predict and run on the host, with the host venv's fer-edge: what every target must match."""
    command = [sys.executable, "-m", "fer_edge"]
    # the root filesystem's commands start from an empty environment; fer-edge reads FER_EDGE_*
    env = {k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}
    result = subprocess.run([*command, "predict", "--detector", DETECTOR, *map(str, check.photos)],
                            capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        return check.report("native", "predict", False, failure(result))
    check.native_predict = predict_lines(result.stdout)
    faces = sum(len(item["faces"]) for item in check.native_predict.values())
    started = XNNPACK_STARTED in result.stderr
    check.report("native", "predict", faces > 0 and started, f"{len(check.native_predict)} photos, "
                 f"{faces} faces" + ("" if started else "; LiteRT did not start XNNPACK"))
    result, check.native_events = collect_events(broker, "native", lambda: subprocess.run(
        [*command, *run_args(str(check.video), broker, "native")], capture_output=True, text=True, env=env))
    if result.returncode != 0:
        return check.report("native", "run", False, failure(result))
    versions = ", ".join(f"{name} {version(name)}" for name in PINNED)
    return check.report("native", "run", bool(check.native_events),
                        f"{describe_events(check.native_events)}; {versions}")


def check_venv(check: Check, targets: list[Target], broker: MosquittoBroker) -> None:
    """Install fer-edge in a venv, then run every step of the targets that use it."""
    if not install(check, targets[0]):
        return
    for target in targets:
        step_version(check, target)
        step_check_config(check, target)
        step_install_service(check, target)
        if target.camera:
            step_predict(check, target)
            step_run(check, target, broker)


def main(argv: list[str] | None = None) -> int:
    """Run every step of the chosen targets; print a line per step and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rootfs", type=Path, required=True, help="the arm64 root filesystem")
    parser.add_argument("--work", type=Path, required=True,
                        help="a scratch folder holding src/ (a copy of the checkout); /work inside")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS),
                        help="only these (default: all)")
    parser.add_argument("--score-tolerance", type=float, default=1e-6,
                        help="the largest score difference that is no difference (default 1e-6)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="venvs checked side by side (default: 2, or 1 on one core)")
    args = parser.parse_args(argv)
    check = Check(Rootfs(args.rootfs.resolve(), args.work.resolve()), args.score_tolerance)
    check.source_hash = tree_hash(check.rootfs.work / "src")
    targets = [TARGETS[name] for name in (args.target or TARGETS)]

    inputs = check.rootfs.work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    check.photos, check.video = write_photos(inputs), write_video(inputs / VIDEO_NAME)
    for cpu in sorted({t.cpu for t in targets}):
        check.report(cpu, "cpuinfo", True, f"Features: {check.rootfs.write_cpuinfo(cpu)}")
    broker = MosquittoBroker(check.rootfs.work / "broker").start()
    try:
        if not native_reference(check, broker):
            print("verdict: FAIL: the native reference run failed; nothing to compare with")
            return 1
        # Targets that share a venv run one after the other, the venvs side by side.
        groups: dict[str, list[Target]] = {}
        for target in targets:
            groups.setdefault(target.venv, []).append(target)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for future in [pool.submit(check_venv, check, group, broker) for group in groups.values()]:
                future.result()
    finally:
        broker.stop()
    failed = [r for r in check.results if not r.ok]
    if failed:
        print(f"verdict: FAIL: {len(failed)} of {len(check.results)} steps failed: "
              + "; ".join(f"{r.target} {r.step}" for r in failed))
        return 1
    print(f"verdict: PASS: all {len(check.results)} steps; every target gave the native faces and events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
