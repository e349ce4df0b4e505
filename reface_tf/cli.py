"""Shared plumbing for the thin command-line entry points."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from reface_tf.errors import ConfigError, RefaceError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors as one ConfigError line (``run_cli`` prints it) instead of a usage dump."""

    def error(self, message: str) -> None:
        raise ConfigError(f"{message}; see --help")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main`` and map the project's errors to one line on stderr and a non-zero exit code."""
    try:
        code = main(argv)
    except RefaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return int(code or 0)
