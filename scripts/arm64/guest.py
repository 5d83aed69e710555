"""The arm64 side of ``make check-arm64``: commands in the root filesystem, cpuinfo, the README's steps."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

IN_ROOTFS = Path(__file__).resolve().parent / "in_rootfs.sh"
README = Path(__file__).resolve().parents[2] / "README.md"
# Linux arm64 HWCAP and HWCAP2 bit names, in bit order (arch/arm64/include/uapi/asm/hwcap.h).
HWCAP = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc "
         "dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg").split()
HWCAP2 = ("dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm svef32mm "
          "svef64mm svebf16 i8mm bf16 dgh rng bti mte").split()
MIDR = {"cortex-a72": (0x0, 0xD08, 3), "cortex-a76": (0x4, 0xD0B, 1)}  # QEMU's: variant, part, revision


def failure(result: subprocess.CompletedProcess) -> str:
    """``exit N: <the line that says why>`` for a command that failed."""
    return f"exit {result.returncode}: {last_line(result.stdout + result.stderr)}"


def last_line(text: str, limit: int = 220) -> str:
    """The last line of an output that is not LiteRT's log: an error's message, shortened."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = ([line for line in lines if not line.startswith("INFO:")] or lines or ["(no output)"])[-1]
    return line if len(line) <= limit else line[:limit - 3] + "..."


@dataclass(frozen=True)
class Rootfs:
    """The root filesystem and the host folder it sees as /work."""

    path: Path
    work: Path

    def run(self, cpu: str, argv: Sequence[str], env: dict[str, str] | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess:
        """Run argv inside on a QEMU CPU model; output captured as text."""
        prefix = ["env", *(f"{key}={value}" for key, value in env.items())] if env else []
        command = ["bash", str(IN_ROOTFS), str(self.path), cpu, str(self.work), "--", *prefix, *argv]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)

    def guest(self, host_path: Path) -> str:
        """The path inside of a file under the work folder."""
        return "/work/" + str(host_path.relative_to(self.work))

    def write_cpuinfo(self, cpu: str) -> str:
        """An ARM-format /proc/cpuinfo for a CPU model, its Features from the HWCAPs QEMU gives it.

        in_rootfs.sh binds it over /proc/cpuinfo: qemu 7.2 shows the host's x86 one, on which
        LiteRT's CPU probe crashes. Returns the Features line.
        """
        probe = self.run(cpu, ["env", "LD_SHOW_AUXV=1", "/bin/true"], timeout=120)
        if probe.returncode != 0:
            raise RuntimeError(f"cannot run /bin/true in {self.path} on {cpu}: {failure(probe)}")
        auxv = dict(re.findall(r"^(AT_HWCAP2?):\s+(\S+)", probe.stdout, re.M))
        bits = int(auxv.get("AT_HWCAP", "0"), 16), int(auxv.get("AT_HWCAP2", "0"), 16)
        features = " ".join(name for table, value in zip((HWCAP, HWCAP2), bits, strict=True)
                            for bit, name in enumerate(table) if value >> bit & 1)
        variant, part, revision = MIDR[cpu]
        block = (f"BogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
                 f"CPU architecture: 8\nCPU variant\t: {variant:#x}\nCPU part\t: {part:#05x}\n"
                 f"CPU revision\t: {revision}\n\n")
        path = self.work / "cpuinfo" / cpu
        path.parent.mkdir(parents=True, exist_ok=True)
        # as many processors as /sys shows (the host's), or the CPU probe disagrees with itself
        path.write_text("".join(f"processor\t: {n}\n{block}" for n in range(os.cpu_count() or 1)))
        return features


def readme_commands(section: str) -> list[list[str]]:
    """The commands of the first sh block under a README heading, without sudo."""
    text = README.read_text()
    start = text.index(section + " ")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    if block is None:
        raise RuntimeError(f"README.md: no sh block under {section!r}")
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        words = words[1:] if words[:1] == ["sudo"] else words
        if words:
            commands.append(words)
    return commands


def install_commands(section: str, venv: str, source: str) -> tuple[list[list[str]], list[list[str]]]:
    """A README section's install steps for a venv and a source folder, and its apt lines apart.

    The root filesystem was built with the apt packages (but python3-picamera2, which only the
    Raspberry Pi archive has); install-service is a step of its own.
    """
    commands, apt = [], []
    for words in readme_commands(section):
        if words[:2] == ["apt", "install"]:
            apt.append(words)
        elif words[-1:] != ["install-service"]:
            commands.append([w.replace("/opt/fer-edge/venv", venv).replace("/path/to/fer-edge", source)
                             for w in words])
    return commands, apt


# What a venv runs on, in one line, whether or not cv2 can be imported there.
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
