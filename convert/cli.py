"""``fer-convert``: the host tools as subcommands (train, evaluate, quantize, soup, compare, profile).

Each subcommand is the tool's own module (``python -m fer_convert.quantize`` runs the same),
with its options and its description; this module only gathers them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import compare, evaluate, profile, quantize, soup, train
from .command import Tool

# in the order a model goes through them
TOOLS: tuple[Tool, ...] = tuple(module.TOOL for module in (train, evaluate, quantize, soup, compare, profile))


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``fer-convert`` parser, and each subcommand's by name."""
    parser = argparse.ArgumentParser(
        prog="fer-convert", description="fer-edge's host side (TensorFlow): train the expression network, "
                                        "evaluate it, quantize it to int8 for the device, and measure it.",
        epilog="fer-convert COMMAND --help describes each command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    return parser, {tool.name: tool.add_to(sub) for tool in TOOLS}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fer-convert``: run the subcommand named."""
    parser, subparsers = build_parser()
    args = parser.parse_args(argv)
    name = args.__dict__.pop("command")  # not an option of the tool (train records its options)
    return next(tool for tool in TOOLS if tool.name == name).start(subparsers[name], args)
