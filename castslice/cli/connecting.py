"""How `recommend` and `verify` reach Prometheus (or Thanos, Mimir): the same flags for both,
read into one client."""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from castslice.cli.inputs import Failure, http_url, seconds

if TYPE_CHECKING:  # usage/ is imported by these commands alone, never on serve's path
    from castslice.usage.prometheus import Prometheus


def add_connection(parser: argparse.ArgumentParser) -> None:
    """--prometheus, --timeout and the authentication flags."""
    parser.add_argument("--prometheus", required=True, metavar="URL", type=http_url,
                        help="Prometheus, Thanos or Mimir HTTP API base URL")
    parser.add_argument("--timeout", type=seconds(600), default=30.0, metavar="SECONDS",
                        help="for each query (default 30)")
    parser.add_argument("--bearer-token-file", metavar="FILE")
    parser.add_argument("--user", help="basic auth user (with --password-file)")
    parser.add_argument("--password-file", metavar="FILE")
    parser.add_argument("--ca-file", metavar="FILE", help="CA bundle for https")


def connection(args: argparse.Namespace) -> "Prometheus":
    """The client the flags describe; a token or password file that cannot be read is one
    line."""
    from castslice.usage.prometheus import Prometheus

    return Prometheus(args.prometheus, token=_read(args.bearer_token_file),
                      basic=_basic(args), ca_file=args.ca_file, timeout=args.timeout)


def _read(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise Failure(f"cannot read {path}: {getattr(error, 'strerror', None) or error}"
                      ) from None


def _basic(args: argparse.Namespace) -> tuple[str, str] | None:
    if args.user is None:
        return None
    if args.password_file is None:
        raise Failure("--user needs --password-file")
    return args.user, _read(args.password_file) or ""
