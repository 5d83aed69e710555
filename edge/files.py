"""What a path names, found without opening it: a FIFO would block a reader, a device never end."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

V4L_MAJOR = 81  # Linux's video4linux character devices (/dev/video*, /dev/v4l-subdev*)


def kind_of(mode: int) -> str:
    """'a directory', 'a FIFO (named pipe)', 'a socket', 'a character device', ... for a st_mode."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def regular_file_problem(path: str | Path) -> str | None:
    """Why ``path`` is no regular file ("not found", "is a socket, not a regular file"), or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None if stat.S_ISREG(mode) else f"is {kind_of(mode)}, not a regular file"


def camera_device_problem(path: str | Path) -> str | None:
    """Why a /dev path cannot be a camera (a pipe such as ``<(cat clip)``, another device), or None.

    A path that does not exist yet may be a camera still to be plugged in: no problem.
    """
    try:
        info = os.stat(path)
    except OSError:
        return None
    if stat.S_ISFIFO(info.st_mode) or stat.S_ISSOCK(info.st_mode):
        return (f"is {kind_of(info.st_mode)}, such as a shell's <(...) makes: fer-edge reads video from a "
                "file it can seek in, so save it to a file first")
    linux = sys.platform.startswith("linux")
    if stat.S_ISCHR(info.st_mode) and linux and os.major(info.st_rdev) != V4L_MAJOR:
        return "is a character device but not a video4linux camera (/dev/videoN); check the path"
    if stat.S_ISBLK(info.st_mode) or stat.S_ISDIR(info.st_mode):
        return f"is {kind_of(info.st_mode)}, not a camera; check the path"
    return None
