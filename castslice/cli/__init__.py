"""The `castslice` command line (SPEC §5). Errors are one line on stderr, never a traceback.

Each command lives in the module for its job: `serving` (serve), `answers` (config, review,
mutate), `replaying` (replay, events), `reports` (savings, doctor, audit), `recommending`
(recommend), `verifying` (verify), `probing` (probe), `ready` (ready); `inputs` reads
every file and stream they take.
"""

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

from castslice import __version__
from castslice.cli import (
    answers,
    probing,
    ready,
    recommending,
    replaying,
    reports,
    serving,
    verifying,
)
from castslice.cli.inputs import Failure
from castslice.settings.config import ConfigError

EXIT_CONFIG = 2
Command = Callable[[argparse.Namespace, Mapping[str, str]], int]


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = parser().parse_args(argv)
    env = os.environ if env is None else env
    try:
        command: Command = args.command
        return command(args, env)
    except ConfigError as error:
        for problem in error.problems:
            print(f"castslice: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except Failure as error:
        print(f"castslice: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1


def parser() -> argparse.ArgumentParser:
    """Every command, each registered by the module that runs it."""
    top = argparse.ArgumentParser(prog="castslice", description=(
        "Rewrite whole-GPU requests into shared GPU slices at Pod admission."))
    top.add_argument("--version", action="version", version=f"castslice {__version__}")
    commands = top.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run: Command, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(command=run)
        return sub

    for module in (serving, answers, replaying, reports, recommending, verifying, probing,
                   ready):
        module.register(command)
    return top


def run() -> NoReturn:
    sys.exit(main())
