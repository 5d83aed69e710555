"""The steps of ``make check-arm64``, run by scripts/check_arm64.sh once the root filesystem is ready.

    python scripts/arm64/check.py --rootfs DIR --work DIR [--target NAME ...]

Runs in the host venv (fer-edge installed natively, scikit-image for the inputs). It makes the
inputs from the astronaut photo, runs ``predict`` and ``run --no-realtime`` natively as the
reference, then installs fer-edge in the arm64 root filesystem with the README's steps and runs
each step there under QEMU, comparing with the reference: the faces ``predict`` prints and the
MQTT events of ``run`` must have the same frames, track ids, boxes, labels and reasons, and
scores within ``--score-tolerance``. Each step prints one line, ``ok`` or ``FAIL`` with its
cause, and the largest score difference; the last line is the verdict, and the exit status is 1
if any step failed.

Scores must agree within 1e-6 (``--score-tolerance``), and do for these inputs. That is not a
law: the crops are bit-identical on both sides, but XNNPACK's int8 kernels for arm64 and for
x86-64 (Zen 4 here) can round an output one step (1/256) apart; a 48x48 crop of the astronaut
without predict's margin does. Such a difference shows as a FAIL naming the score; judge it
against that step. XNNPACK must start on both sides (it needs /sys and an ARM /proc/cpuinfo
under QEMU; without them LiteRT falls back to its reference kernels, or crashes).

Targets (``--target``, default all):
  pi-a72, pi-a76    the README's Raspberry Pi steps (pip wheels: OpenCV, numpy 2), Pi 4 / Pi 5 CPUs
  jetson            the README's Jetson steps on Debian's python3-opencv (numpy 1.x, no cv2.data),
                    standing in for JetPack's OpenCV; Cortex-A76, QEMU 7.2's nearest to Orin's A78AE
  jetson-numpy2     the same venv's steps with numpy 2 upgraded into it: Debian's cv2 cannot be
                    imported, so only the commands that need no camera are run, and must work
picamera2 is not in the root filesystem (it comes from the Raspberry Pi archive): a command that
imported it eagerly would fail here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the test broker
sys.path.insert(0, str(Path(__file__).resolve().parent))
from media import VIDEO_NAME, write_photos, write_video  # noqa: E402
from support.broker import MosquittoBroker  # noqa: E402

IN_ROOTFS = Path(__file__).resolve().parent / "in_rootfs.sh"
XNNPACK_STARTED = "Created TensorFlow Lite XNNPACK delegate"  # LiteRT's log line
# Packages whose versions the venvs in the root filesystem take from the native venv, so that
# both sides run the same code; the Jetson venvs take numpy from its README step and OpenCV from apt.
PINNED = ("ai-edge-litert", "numpy", "opencv-python-headless", "paho-mqtt")
PINNED_JETSON = ("ai-edge-litert", "paho-mqtt")
# Linux arm64 HWCAP and HWCAP2 bit names, in bit order (arch/arm64/include/uapi/asm/hwcap.h).
HWCAP = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma "
         "lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg").split()
HWCAP2 = ("dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm svef32mm "
          "svef64mm svebf16 i8mm bf16 dgh rng bti mte").split()
# What a venv runs on: one line, whether or not cv2 can be imported.
VERSIONS_PROBE = """
import importlib.metadata as metadata
found = []
for name in ("numpy", "opencv-python-headless", "ai-edge-litert"):
    try:
        found.append(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
try:
    import cv2
    found.append(f"cv2 {cv2.__version__} from {cv2.__file__}")
except Exception as exc:
    found.append(f"import cv2 fails: {str(exc).splitlines()[0]}")
print("; ".join(found))
"""
MIDR = {"cortex-a72": (0x0, 0xD08, 3), "cortex-a76": (0x4, 0xD0B, 1)}  # variant, part, revision


@dataclass
class Result:
    """A step's outcome: one line of the report."""

    target: str
    step: str
    ok: bool
    detail: str

    def line(self) -> str:
        """``ok   TARGET STEP: detail`` or ``FAIL ...``."""
        return f"{'ok  ' if self.ok else 'FAIL'} {self.target:<14} {self.step:<16} {self.detail}"


@dataclass(frozen=True)
class Target:
    """A way of installing fer-edge in the root filesystem, and the CPU model to run it on."""

    name: str
    cpu: str
    readme_section: str  # the README heading whose sh block holds the install steps
    venv: str
    extra_install: tuple[tuple[str, ...], ...] = ()
    camera: bool = True  # False: only the commands that need no camera (cv2 is unusable)
    jetson: bool = False


TARGETS = {t.name: t for t in (
    Target("pi-a72", "cortex-a72", "### Raspberry Pi", "/opt/fer-edge/venv"),
    Target("pi-a76", "cortex-a76", "### Raspberry Pi", "/opt/fer-edge/venv"),
    Target("jetson", "cortex-a76", "### Jetson", "/opt/fer-edge/venv-jetson", jetson=True),
    Target("jetson-numpy2", "cortex-a76", "### Jetson", "/opt/fer-edge/venv-jetson-numpy2",
           extra_install=(("pip", "install", "numpy>=2"),), camera=False, jetson=True),
)}


@dataclass
class Check:
    """The run's state: where things are, the native reference, the results so far."""

    rootfs: Path
    work: Path
    photos: list[Path] = field(default_factory=list)
    video: Path | None = None
    reference_predict: dict[str, dict] = field(default_factory=dict)
    reference_events: list[dict] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    installed: set[str] = field(default_factory=set)
    tolerance: float = 1e-6

    def report(self, target: str, step: str, ok: bool, detail: str) -> bool:
        """Record a step's result and print its line at once."""
        result = Result(target, step, ok, detail)
        self.results.append(result)
        print(result.line(), flush=True)
        return ok

    def in_rootfs(self, cpu: str, argv: Sequence[str], timeout: float = 900,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run argv inside the root filesystem on a CPU model; output captured as text."""
        prefix = ["env", *(f"{k}={v}" for k, v in (env or {}).items())] if env else []
        return subprocess.run(["bash", str(IN_ROOTFS), str(self.rootfs), cpu, str(self.work), "--",
                               *prefix, *argv], capture_output=True, text=True, timeout=timeout)

    def guest(self, host_path: Path) -> str:
        """The path inside the root filesystem of a file under the work folder."""
        return "/work/" + str(host_path.relative_to(self.work))


def failure(result: subprocess.CompletedProcess) -> str:
    """``exit N: <the line that says why>`` for a command that failed."""
    return f"exit {result.returncode}: {first_line(result.stdout + result.stderr)}"


def first_line(text: str, limit: int = 220) -> str:
    """The last meaningful line of an error output, shortened: what a reader needs first."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    interesting = [line for line in lines if not line.startswith(("INFO:", "WARNING: Created"))]
    line = (interesting or lines or ["(no output)"])[-1]
    return line if len(line) <= limit else line[:limit - 3] + "..."


# ---- inputs and the CPU models ----------------------------------------------------------------

def make_inputs(check: Check) -> None:
    """The photos and the video, from the astronaut photo."""
    inputs = check.work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    check.photos = write_photos(inputs)
    check.video = write_video(inputs / VIDEO_NAME)


def write_cpuinfo(check: Check, cpu: str) -> str:
    """An ARM-format /proc/cpuinfo for a CPU model, its Features from the HWCAPs QEMU gives it."""
    probe = check.in_rootfs(cpu, ["env", "LD_SHOW_AUXV=1", "/bin/true"], timeout=120)
    if probe.returncode != 0:
        raise RuntimeError(f"cannot run /bin/true in the root filesystem on {cpu}: {failure(probe)}")
    auxv = dict(re.findall(r"^(AT_HWCAP2?):\s+(\S+)", probe.stdout, re.M))
    bits = int(auxv.get("AT_HWCAP", "0"), 16), int(auxv.get("AT_HWCAP2", "0"), 16)
    features = [name for table, value in zip((HWCAP, HWCAP2), bits, strict=True)
                for bit, name in enumerate(table) if value >> bit & 1]
    variant, part, revision = MIDR[cpu]
    block = (f"BogoMIPS\t: 108.00\nFeatures\t: {' '.join(features)}\nCPU implementer\t: 0x41\n"
             f"CPU architecture: 8\nCPU variant\t: {variant:#x}\nCPU part\t: {part:#05x}\n"
             f"CPU revision\t: {revision}\n\n")
    path = check.work / "cpuinfo" / cpu
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"processor\t: {n}\n{block}" for n in range(os.cpu_count() or 1)))
    return " ".join(features)


# ---- the README's install steps ---------------------------------------------------------------

def readme_steps(section: str) -> list[list[str]]:
    """The commands of the first sh block under a README heading, without sudo."""
    text = (ROOT / "README.md").read_text()
    start = text.index(section + " ")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    if block is None:
        raise RuntimeError(f"README.md: no sh block under {section!r}")
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["sudo"]:
            words = words[1:]
        if words:
            commands.append(words)
    return commands


def install_commands(target: Target, source: str) -> tuple[list[list[str]], list[str]]:
    """The README's steps for a target, made to run in the root filesystem, and what was left out.

    apt lines are left out: the root filesystem was built with those packages, except
    python3-picamera2, which only the Raspberry Pi archive has. install-service is a step of its own.
    """
    commands, skipped = [], []
    for words in readme_steps(target.readme_section):
        if words[:2] == ["apt", "install"]:
            skipped.append(" ".join(words))
            continue
        if any(word.endswith("fer-edge") and "install-service" in words for word in words):
            continue
        words = [w.replace("/opt/fer-edge/venv", target.venv).replace("/path/to/fer-edge", source)
                 for w in words]
        commands.append(words)
    for words in target.extra_install:
        commands.append([f"{target.venv}/bin/{words[0]}", *words[1:]])
    return commands, skipped


def install(check: Check, target: Target) -> bool:
    """Install fer-edge for a target with the README's steps; a venv made for other steps is remade."""
    source = "/work/src"
    commands, skipped = install_commands(target, source)
    recipe = hashlib.sha256(json.dumps(commands).encode()).hexdigest()[:16]
    stamp = check.rootfs / target.venv.lstrip("/") / ".check-arm64-recipe"
    if stamp.exists() and stamp.read_text() != recipe:
        subprocess.run(["rm", "-rf", str(stamp.parent)], check=True)
    env = {"PIP_CONSTRAINT": check.guest(write_pins(check, PINNED_JETSON if target.jetson else PINNED))}
    started = time.monotonic()
    for words in commands:
        if words[1:3] == ["-m", "venv"] and (check.rootfs / words[-1].lstrip("/")).is_dir():
            continue  # the venv is there from an earlier run: pip brings it up to date
        result = check.in_rootfs(target.cpu, words, env=env)
        if result.returncode != 0:
            return check.report(target.name, "install", False, f"`{' '.join(words)}` {failure(result)}")
    stamp.write_text(recipe)
    probe = check.in_rootfs(target.cpu, [f"{target.venv}/bin/python", "-c", VERSIONS_PROBE])
    note = f"; skipped `{'`, `'.join(skipped)}` (baked into the rootfs, or Pi-only)" if skipped else ""
    return check.report(target.name, "install", probe.returncode == 0,
                        f"{len(commands)} README steps in {time.monotonic() - started:.0f} s: "
                        f"{probe.stdout.strip() or failure(probe)}{note}")


# ---- the steps ----------------------------------------------------------------------------------

def step_version(check: Check, target: Target) -> None:
    """``fer-edge --version`` prints the installed version."""
    expected = f"fer-edge {version('fer-edge')}"
    result = check.in_rootfs(target.cpu, [f"{target.venv}/bin/fer-edge", "--version"])
    got = result.stdout.strip()
    check.report(target.name, "--version", result.returncode == 0 and got == expected,
                 got if result.returncode == 0 else failure(result))


def step_check_config(check: Check, target: Target) -> None:
    """``check-config`` accepts the example config."""
    example = "/work/src/edge/config.example.toml"
    result = check.in_rootfs(target.cpu, [f"{target.venv}/bin/fer-edge", "check-config", example])
    ok = result.returncode == 0 and result.stdout.strip() == f"{example}: OK"
    check.report(target.name, "check-config", ok, result.stdout.strip() if ok else failure(result))


def step_install_service(check: Check, target: Target) -> None:
    """``install-service --dry-run`` plans a unit that runs this venv's Python."""
    argv = [f"{target.venv}/bin/fer-edge", "install-service", "--dry-run"]
    result = check.in_rootfs(target.cpu, argv + (["--jetson"] if target.jetson else []))
    wanted = ["dry run: nothing is changed", "/etc/systemd/system/fer-edge.service",
              f"ExecStart={target.venv}/bin/fer-edge run", *(["jetson.conf"] if target.jetson else [])]
    missing = [w for w in wanted if w not in result.stdout]
    ok = result.returncode == 0 and not missing
    detail = (f"{len(result.stdout.splitlines())} lines, ExecStart={target.venv}/bin/fer-edge"
              + (" and the Jetson drop-in" if target.jetson else "") if ok else
              failure(result) if result.returncode else f"output lacks {missing}")
    check.report(target.name, "install-service", ok, detail)


def predict_lines(stdout: str) -> dict[str, dict]:
    """predict's JSON lines by image file name."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            out[Path(item["image"]).name] = item
    return out


@dataclass
class Differences:
    """What differs from the native run; scores within the tolerance are not a difference."""

    tolerance: float
    problems: list[str] = field(default_factory=list)
    largest: float = 0.0  # the largest score difference seen, within the tolerance or not

    def scores(self, where: str, ours: dict[str, float], native: dict[str, float], rounding: float = 0.0) -> None:
        """Compare two score tables label by label; ``rounding``: what printing them may add."""
        for label, score in native.items():
            delta = abs(ours.get(label, math.inf) - score)
            self.largest = max(self.largest, delta)
            if delta > self.tolerance + rounding + 1e-12:
                self.problems.append(f"{where} {label} {ours.get(label)}, native {score}")

    def exact(self, where: str, ours: dict, native: dict, keys: Sequence[str]) -> None:
        """Fields that must be equal."""
        self.problems += [f"{where} {key} {ours.get(key)}, native {native[key]}"
                          for key in keys if ours.get(key) != native[key]]

    def summary(self, what: str) -> str:
        """The step's detail line."""
        largest = f"largest score difference {self.largest:.2g} (tolerance {self.tolerance:.2g})"
        if not self.problems:
            return f"{what}, same as native; {largest}"
        return f"{len(self.problems)} differences in {what}, first: {self.problems[0]}; {largest}"


def step_predict(check: Check, target: Target) -> None:
    """``predict`` on the photos gives the native faces, labels and scores."""
    argv = [f"{target.venv}/bin/fer-edge", "predict", *(check.guest(p) for p in check.photos)]
    result = check.in_rootfs(target.cpu, argv)
    if result.returncode != 0:
        check.report(target.name, "predict", False, failure(result))
        return
    ours = predict_lines(result.stdout)
    diff = Differences(check.tolerance)
    if XNNPACK_STARTED not in result.stderr:
        diff.problems.append("LiteRT did not start XNNPACK (it ran other kernels than a Pi would)")
    for name, reference in check.reference_predict.items():
        faces, native = ours.get(name, {}).get("faces"), reference["faces"]
        if faces is None or len(faces) != len(native):
            diff.problems.append(f"{name}: {'no' if faces is None else len(faces)} faces, native {len(native)}")
            continue
        for index, (a, b) in enumerate(zip(faces, native, strict=True)):
            diff.exact(f"{name} face {index}", a, b, ("box", "emotion"))
            diff.scores(f"{name} face {index}", a["scores"], b["scores"], rounding=1e-4)  # printed to 4 decimals
    count = sum(len(item.get("faces", [])) for item in ours.values())
    check.report(target.name, "predict", not diff.problems, diff.summary(f"{len(ours)} photos, {count} faces"))


def collect_events(broker: MosquittoBroker, device_id: str,
                   run: Callable[[], subprocess.CompletedProcess]) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run the daemon (``run()``) while a subscriber gathers its events, until it says offline."""
    events: list[dict] = []
    offline = threading.Event()

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic.endswith("/emotion"):
            events.append(json.loads(message.payload))
        elif message.topic.endswith("/status") and message.payload == b"offline":
            offline.set()

    viewer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"check-arm64-{device_id}")
    viewer.on_message = on_message
    viewer.connect(broker.host, broker.port)
    viewer.subscribe(f"fer-edge/{device_id}/#", qos=1)
    viewer.loop_start()
    try:
        time.sleep(0.2)  # the subscription is in place before the daemon publishes
        result = run()
        offline.wait(timeout=10)
    finally:
        viewer.loop_stop()
        viewer.disconnect()
    return result, events


def run_argv(fer_edge: str, video: str, broker: MosquittoBroker, device_id: str) -> list[str]:
    """``fer-edge run`` on the video, every frame and every face, against the local broker."""
    return [fer_edge, "run", "--source", video, "--no-realtime", "--publish", "every",
            "--mqtt-host", broker.host, "--mqtt-port", str(broker.port), "--device-id", device_id]


def compare_events(ours: list[dict], native: list[dict], tolerance: float) -> Differences:
    """Differences between two runs' events: frame, track id, box, label, reason, scores."""
    mine, theirs = {(e["frame"], e["face_id"]): e for e in ours}, {(e["frame"], e["face_id"]): e for e in native}
    diff = Differences(tolerance)
    diff.problems += [f"frame {f} track {t}: missing" for f, t in sorted(theirs.keys() - mine.keys())]
    diff.problems += [f"frame {f} track {t}: not in the native run" for f, t in sorted(mine.keys() - theirs.keys())]
    for key in sorted(theirs.keys() & mine.keys()):
        where = f"frame {key[0]} track {key[1]}"
        diff.exact(where, mine[key], theirs[key], ("box", "emotion", "reason"))
        diff.scores(where, mine[key]["scores"], theirs[key]["scores"])
        # confidence: the label's score, to 4 decimals
        diff.scores(where, {"confidence": mine[key]["confidence"]}, {"confidence": theirs[key]["confidence"]},
                    rounding=1e-4)
    return diff


def describe_events(events: list[dict]) -> str:
    """``78 events, frames 0-59, tracks 1,2``."""
    if not events:
        return "0 events"
    frames = [e["frame"] for e in events]
    tracks = sorted({e["face_id"] for e in events})
    return f"{len(events)} events, frames {min(frames)}-{max(frames)}, tracks {','.join(map(str, tracks))}"


def step_run(check: Check, target: Target, broker: MosquittoBroker) -> None:
    """``run --no-realtime`` on the video publishes the native events."""
    device_id = f"arm64-{target.name}"
    argv = run_argv(f"{target.venv}/bin/fer-edge", check.guest(check.video), broker, device_id)
    started = time.monotonic()
    result, events = collect_events(broker, device_id, lambda: check.in_rootfs(target.cpu, argv))
    took = time.monotonic() - started
    if result.returncode != 0:
        check.report(target.name, "run", False, failure(result))
        return
    diff = compare_events(events, check.reference_events, check.tolerance)
    check.report(target.name, "run", not diff.problems,
                 diff.summary(f"{describe_events(events)} ({took:.0f} s emulated; no speed claim)"))


# ---- the native reference -----------------------------------------------------------------------

def native_reference(check: Check, broker: MosquittoBroker) -> bool:
    """predict and run on the host, with the host venv's fer-edge: what every target must match."""
    fer_edge = [sys.executable, "-m", "fer_edge"]
    # the root filesystem's commands start with an empty environment; so does the reference
    env = {k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}
    result = subprocess.run([*fer_edge, "predict", *map(str, check.photos)], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        return check.report("native", "predict", False, failure(result))
    check.reference_predict = predict_lines(result.stdout)
    faces = sum(len(item.get("faces", [])) for item in check.reference_predict.values())
    started = XNNPACK_STARTED in result.stderr
    check.report("native", "predict", faces > 0 and started, f"{len(check.reference_predict)} photos, "
                 f"{faces} faces" + ("" if started else "; LiteRT did not start XNNPACK"))
    argv = run_argv("", str(check.video), broker, "native")[1:]
    result, check.reference_events = collect_events(
        broker, "native", lambda: subprocess.run([*fer_edge, *argv], capture_output=True, text=True, env=env))
    if result.returncode != 0:
        return check.report("native", "run", False, failure(result))
    versions = ", ".join(f"{name} {version(name)}" for name in PINNED)
    return check.report("native", "run", bool(check.reference_events),
                        f"{describe_events(check.reference_events)}; {versions}")


def write_pins(check: Check, names: Sequence[str]) -> Path:
    """A pip constraints file: the native venv's versions of these packages."""
    path = check.work / f"native-versions-{len(names)}.txt"
    path.write_text("".join(f"{name}=={version(name)}\n" for name in names))
    return path


def main(argv: list[str] | None = None) -> int:
    """Run every step of the chosen targets; print a line per step and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rootfs", type=Path, required=True, help="the arm64 root filesystem")
    parser.add_argument("--work", type=Path, required=True,
                        help="a scratch folder holding src/ (a copy of the checkout); seen as /work inside")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS),
                        help="run only these targets (default: all)")
    parser.add_argument("--score-tolerance", type=float, default=1e-6,
                        help="largest score difference accepted (default 1e-6)")
    args = parser.parse_args(argv)
    check = Check(rootfs=args.rootfs.resolve(), work=args.work.resolve(), tolerance=args.score_tolerance)
    targets = [TARGETS[name] for name in (args.target or TARGETS)]

    make_inputs(check)
    for cpu in sorted({t.cpu for t in targets}):
        check.report(cpu, "cpuinfo", True, f"Features: {write_cpuinfo(check, cpu)}")
    broker = MosquittoBroker(check.work / "broker").start()
    try:
        if not native_reference(check, broker):
            print("verdict: FAIL: the native reference run failed; nothing to compare with")
            return 1
        for target in targets:
            if target.venv not in check.installed:
                if not install(check, target):
                    continue
                check.installed.add(target.venv)
            step_version(check, target)
            step_check_config(check, target)
            step_install_service(check, target)
            if target.camera:
                step_predict(check, target)
                step_run(check, target, broker)
    finally:
        broker.stop()
    failed = [r for r in check.results if not r.ok]
    if failed:
        print(f"verdict: FAIL: {len(failed)} of {len(check.results)} steps failed: "
              + "; ".join(f"{r.target} {r.step}" for r in failed))
        return 1
    print(f"verdict: PASS: all {len(check.results)} steps, every target the same as native")
    return 0


if __name__ == "__main__":
    sys.exit(main())
