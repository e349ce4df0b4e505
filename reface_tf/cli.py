"""Shared plumbing for the thin command-line entry points."""

from __future__ import annotations

import argparse
import logging
import sys
import time
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


class CountProgress:
    """A tqdm bar on a terminal; otherwise a log line every ``log_every`` seconds (CI logs, nohup files)."""

    def __init__(self, total: int, mode: str, unit: str, verb: str, logger: logging.Logger, log_every: float = 10.0):
        self.total, self.done, self.bar, self.unit, self.verb, self.log = total, 0, None, unit, verb, logger
        self.log_every = log_every
        self.start = self.last = time.monotonic()
        if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=unit, desc=verb)
        self.quiet = mode == "none"

    def update(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        if not self.quiet and (now - self.last >= self.log_every or self.done == self.total):
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            self.log.info("%s %d/%d %ss (%.1f %ss/s)", self.verb, self.done, self.total, self.unit, rate, self.unit)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
