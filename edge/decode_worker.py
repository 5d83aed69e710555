"""Untrusted images decoded in a worker process with hard limits of its own.

A header parser is a first gate, not a bound: a file can declare one size to us and another
to the decoder, or cost minutes of CPU at a modest size (a progressive JPEG whose scans
repeat). So every photo is decoded by a child process (``python -m fer_edge.decode_worker``)
that caps itself: address space (RLIMIT_AS, its idle size plus a budget per pixel of the
cap), CPU seconds per decode (RLIMIT_CPU), and OpenCV's own pixel limit
(OPENCV_IO_MAX_IMAGE_PIXELS). The parent adds a wall-clock limit. A worker that runs out of
any of them is killed and the next decode starts a new one; the caller gets an ImageError
that says which limit: too large, too slow, or unreadable.

The worker starts at the first decode and exits after ``idle_seconds`` without one, so a
daemon that decodes no photos pays nothing for it. One decode runs at a time per worker.

Protocol (pipes, little-endian): request ``<BQ`` kind (0 bytes, 1 a file path), flags, then
``<Q`` length and the bytes or the UTF-8 path; answer ``<BQ`` status and the worker's peak
RSS in kB, then for success ``<III`` height, width, channels and the pixels, else ``<I``
length and a UTF-8 message.
"""

from __future__ import annotations

import logging
import os
import resource
import select
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from typing import IO, Any, BinaryIO

import numpy as np

from .errors import ImageError, ImageTooLargeError

log = logging.getLogger(__name__)

CPU_SECONDS = 10.0  # per decode; a legitimate photo at the 40 MP cap took at most 1.2 s here
WALL_SECONDS = 30.0  # a starved worker is also stopped
# Address space a decode may add to the worker's idle size, per pixel of the cap: the output
# (3 B), a progressive JPEG's coefficients (2 B a sample), GIF's canvas and frame (6 B) and
# libtiff's strips fit; at the 40 MP default that is 480 MB, and at least 256 MB.
BYTES_PER_PIXEL = 12
MIN_BUDGET = 256 << 20
IDLE_SECONDS = 60.0
_ANSWER = struct.Struct("<BQ")
OK, UNREADABLE, TOO_LARGE = 0, 1, 2
BYTES, PATH = 0, 1


def memory_budget(max_pixels: int) -> int:
    """The address space a decode may add to the worker's idle size."""
    return max(MIN_BUDGET, BYTES_PER_PIXEL * max_pixels)


class DecodeWorker:
    """A decode process, started when first needed, replaced when a limit kills it."""

    def __init__(self, max_pixels: int, *, cpu_seconds: float = CPU_SECONDS,
                 wall_seconds: float = WALL_SECONDS, memory_bytes: int | None = None,
                 idle_seconds: float = IDLE_SECONDS):
        """``max_pixels`` also sets OpenCV's own limit; ``memory_bytes`` defaults to ``memory_budget``."""
        self.max_pixels, self.cpu_seconds, self.wall_seconds = max_pixels, cpu_seconds, wall_seconds
        self.memory_bytes = memory_budget(max_pixels) if memory_bytes is None else memory_bytes
        self.idle_seconds = idle_seconds
        self.peak_rss_kb = 0  # the last worker's high-water mark, as it reported it
        self.started = 0  # workers started so far (the first, then one after each kill)
        self._process: subprocess.Popen[bytes] | None = None
        self._turn = threading.Lock()
        self._idle: threading.Timer | None = None

    def decode(self, data: bytes | memoryview, flags: int, what: str = "an image") -> np.ndarray:
        """The picture in ``data`` decoded with cv2.imdecode ``flags``; ImageError if it cannot be,
        its message starting with ``what`` ("a JPEG")."""
        return self._request(BYTES, bytes(data) if isinstance(data, memoryview) else data, flags, what)

    def decode_file(self, path: str, flags: int, what: str = "an image") -> np.ndarray:
        """The picture in the regular file ``path``, read by the worker itself (never by us)."""
        return self._request(PATH, os.fsencode(path), flags, what)

    def close(self) -> None:
        """Stop the worker (the next decode starts another)."""
        with self._turn:
            self._stop()

    def _request(self, kind: int, payload: bytes, flags: int, what: str) -> np.ndarray:
        with self._turn:
            if self._idle is not None:
                self._idle.cancel()
            try:
                return self._exchange(kind, payload, flags, what)
            finally:
                if self._process is not None:
                    self._idle = threading.Timer(self.idle_seconds, self.close)
                    self._idle.daemon = True
                    self._idle.start()

    def _exchange(self, kind: int, payload: bytes, flags: int, what: str) -> np.ndarray:
        process = self._process
        if process is None or process.poll() is not None:
            process = self._start()
        assert process.stdin is not None and process.stdout is not None
        deadline = time.monotonic() + self.wall_seconds
        try:
            process.stdin.write(_ANSWER.pack(kind, flags) + struct.pack("<Q", len(payload)))
            process.stdin.write(payload)
            process.stdin.flush()
            status, peak = _ANSWER.unpack(_read(process.stdout, _ANSWER.size, deadline))
            self.peak_rss_kb = peak
            if status == OK:
                height, width, channels = struct.unpack("<III", _read(process.stdout, 12, deadline))
                shape = (height, width) if channels == 1 else (height, width, channels)
                image = np.empty(shape, np.uint8)
                _read_into(process.stdout, image.data.cast("B"), deadline)
                return image
            (length,) = struct.unpack("<I", _read(process.stdout, 4, deadline))
            message = _read(process.stdout, length, deadline).decode("utf-8", "replace")
        except (BrokenPipeError, EOFError, TimeoutError) as exc:
            raise self._failure(process, what, timed_out=isinstance(exc, TimeoutError)) from None
        if status == TOO_LARGE:
            raise ImageTooLargeError(f"{what} too large to decode within the decoder's "
                                     f"{self.memory_bytes >> 20} MB (or OpenCV's pixel limit)")
        raise ImageError(message or f"{what} that OpenCV cannot decode (corrupt or truncated)")

    def _failure(self, process: subprocess.Popen[bytes], what: str, *, timed_out: bool) -> ImageError:
        """Kill the worker and say which limit it ran into."""
        process.kill()
        code = process.wait()
        self._process = None
        if timed_out:
            return ImageError(f"{what} too slow to decode: over {self.wall_seconds:g} s; "
                              "the decode was stopped")
        if code in (-signal.SIGXCPU, -signal.SIGKILL):
            return ImageError(f"{what} too slow to decode: over {self.cpu_seconds:g} s of CPU; "
                              "the decode was stopped")
        return ImageTooLargeError(f"{what} too large to decode within the decoder's "
                                  f"{self.memory_bytes >> 20} MB (it stopped with exit status {code})")

    def _start(self) -> subprocess.Popen[bytes]:
        # OpenCV's own pixel limit; one thread and one malloc arena keep the address space small
        env = {**os.environ, "OPENCV_IO_MAX_IMAGE_PIXELS": str(self.max_pixels), "OMP_NUM_THREADS": "1",
               "MALLOC_ARENA_MAX": "1", "OPENCV_FOR_THREADS_NUM": "1", "OPENCV_LOG_LEVEL": "WARNING"}
        argv = [sys.executable, "-m", "fer_edge.decode_worker", str(self.memory_bytes), str(self.cpu_seconds)]
        self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                         close_fds=True)
        self.started += 1
        log.debug("decode worker %d started (%d MB, %g s of CPU a decode)", self._process.pid,
                  self.memory_bytes >> 20, self.cpu_seconds)
        return self._process

    def _stop(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.close()  # the worker exits at the end of its input
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()


def _wait_readable(stream: IO[bytes], deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0 or not select.select([stream], [], [], left)[0]:
        raise TimeoutError


def _read(stream: IO[bytes], size: int, deadline: float) -> bytes:
    buffer = bytearray(size)
    _read_into(stream, memoryview(buffer), deadline)
    return bytes(buffer)


def _read_into(stream: IO[bytes], view: memoryview, deadline: float) -> None:
    fd, done = stream.fileno(), 0
    while done < len(view):
        _wait_readable(stream, deadline)
        got = os.readv(fd, [view[done:done + (1 << 20)]])
        if not got:
            raise EOFError
        done += got


# --- the worker's side --------------------------------------------------------------------


def _status_kb(field: str) -> int:
    """A size from /proc/self/status in kB: VmSize (address space), VmHWM (peak RSS since exec).

    Not getrusage's ru_maxrss: that keeps the parent's peak across fork and exec.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _read_exact(fd: int, size: int) -> bytearray:
    buffer, done = bytearray(size), 0  # one buffer: a list of chunks joined would cost twice
    view = memoryview(buffer)
    while done < size:
        got = os.readv(fd, [view[done:done + (1 << 20)]])
        if not got:
            raise EOFError
        done += got
    return buffer


def _map_file(path: bytes) -> np.ndarray:
    """A regular file's bytes, mapped; ValueError for anything else (FIFOs, devices)."""
    import mmap

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        if os.fstat(fd).st_size == 0:
            return np.empty(0, np.uint8)
        return np.frombuffer(mmap.mmap(fd, 0, access=mmap.ACCESS_READ), np.uint8)
    finally:
        os.close(fd)


def _answer(out: BinaryIO, status: int, body: bytes = b"") -> None:
    peak = _status_kb("VmHWM")
    out.write(_ANSWER.pack(status, peak) + body)
    out.flush()


# What OpenCV logs when a decoder ran out of memory or met OpenCV's pixel limit: it catches
# its own exceptions and returns None, so its log is the only place that says why. A
# std::bad_alloc reaches that log as "unknown exception", libtiff's failed malloc as "No space for".
_TOO_LARGE_SIGNS = ("Insufficient memory", "Failed to allocate", "Out of memory", "MAX_IMAGE_PIXELS",
                    "bad_alloc", "unknown exception", "Memory allocation failed", "No space for")


def _decode(cv2: Any, data: np.ndarray, flags: int, log_file: BinaryIO) -> tuple[int, Any]:
    """(OK, image) or (status, ""), from one imdecode with its log captured."""
    log_file.seek(0)
    log_file.truncate()
    try:
        image = cv2.imdecode(data, flags)
    except MemoryError:
        image, said = None, "Out of memory"
    except cv2.error as exc:
        image, said = None, str(exc)
    else:
        sys.stderr.flush()
        log_file.seek(0)
        said = log_file.read(1 << 16).decode("utf-8", "replace")
    if image is not None:
        return OK, image
    return (TOO_LARGE if any(sign in said for sign in _TOO_LARGE_SIGNS) else UNREADABLE), ""


def serve(memory_bytes: int, cpu_seconds: float) -> None:
    """The worker's loop: limits first, then one decode per request until its input ends."""
    import tempfile

    import cv2

    cv2.setNumThreads(1)
    limit = _status_kb("VmSize") * 1024 + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    log_file = tempfile.TemporaryFile()
    os.dup2(log_file.fileno(), 2)  # OpenCV's and the codecs' messages: read after each decode
    stdin, out = sys.stdin.buffer.fileno(), sys.stdout.buffer
    while True:
        try:
            kind, flags = _ANSWER.unpack(_read_exact(stdin, _ANSWER.size))
            (length,) = struct.unpack("<Q", _read_exact(stdin, 8))
            payload = _read_exact(stdin, length)
        except EOFError:
            return
        used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        resource.setrlimit(resource.RLIMIT_CPU, (int(used + cpu_seconds) + 1, resource.RLIM_INFINITY))
        try:
            data = _map_file(bytes(payload)) if kind == PATH else np.frombuffer(payload, np.uint8)
            status, result = _decode(cv2, data, flags, log_file)
            del data, payload
        except (OSError, ValueError) as exc:
            status, result = UNREADABLE, f"cannot read it ({getattr(exc, 'strerror', None) or exc})"
        if status != OK:
            text = result.encode()
            _answer(out, status, struct.pack("<I", len(text)) + text)
            continue
        channels = 1 if result.ndim == 2 else result.shape[2]
        _answer(out, OK, struct.pack("<III", result.shape[0], result.shape[1], channels))
        out.write(np.ascontiguousarray(result).data.cast("B"))
        out.flush()
        del result


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)
    try:
        serve(int(sys.argv[1]), float(sys.argv[2]))
    except BrokenPipeError:  # the parent went away
        pass
