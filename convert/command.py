"""What every host tool shares: a parser built from its module's docstring, and one place that
turns its failures into one line on stderr and an exit code, never a traceback.

Each tool module (train, evaluate, quantize, soup, compare, profile) defines ``TOOL``, a
:class:`Tool`. ``python -m fer_convert.X`` runs ``TOOL.main()``; ``fer-convert X``
(:mod:`fer_convert.cli`) registers the same options as a subcommand and runs ``TOOL.start``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fer_edge.errors import EdgeError, ModelError

from .data import DataError


class ToolError(Exception):
    """A host tool refuses or fails; the message names the cause and the remedy.

    ``exit_code`` 2, as argparse's usage errors: the input was wrong. A subclass may say otherwise.
    """

    exit_code = 2


# Data or a model file the tool cannot use: exit 2 like any other bad input.
INPUT_ERRORS: tuple[type[Exception], ...] = (DataError, ModelError)


def report_failure(prog: str, message: object, exit_code: int) -> int:
    """Print ``prog: error: message`` on stderr, as argparse does for a usage error; return ``exit_code``."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return exit_code


@dataclass(frozen=True)
class Tool:
    """One host tool: its name, one-line help, description, options and work."""

    name: str
    help: str
    description: str | None
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    # what counts as bad input (exit 2); any other fer_edge EdgeError exits with its own code
    input_errors: tuple[type[Exception], ...] = INPUT_ERRORS
    # a rule across options that argparse cannot state; refused as a usage error
    usage_problem: Callable[[argparse.Namespace], str | None] | None = None

    def parser(self) -> argparse.ArgumentParser:
        """The tool's own parser, ``python -m fer_convert.NAME``."""
        parser = argparse.ArgumentParser(prog=f"python -m fer_convert.{self.name}", **self._texts())
        self.add_arguments(parser)
        return parser

    def add_to(self, subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
        """Register the tool as a subcommand of ``fer-convert``; return its parser."""
        parser = subparsers.add_parser(self.name, help=self.help, **self._texts())
        self.add_arguments(parser)
        return parser

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Parse ``argv`` with the tool's own parser and run it."""
        parser = self.parser()
        return self.start(parser, parser.parse_args(argv))

    def start(self, parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
        """Run the tool on parsed options; its failures as one line and an exit code."""
        if self.usage_problem and (problem := self.usage_problem(args)):
            parser.error(problem)
        try:
            return self.run(args)
        except ToolError as exc:
            return report_failure(parser.prog, exc, exc.exit_code)
        except self.input_errors as exc:
            return report_failure(parser.prog, exc, 2)
        except EdgeError as exc:
            return report_failure(parser.prog, exc, exc.exit_code)
        except KeyboardInterrupt:
            return 130

    def _texts(self) -> dict:
        return {"description": self.description, "formatter_class": argparse.RawDescriptionHelpFormatter}
