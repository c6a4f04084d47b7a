"""What `doctor`, `savings` and `audit` read: a file, stdin, or the cluster itself through the
user's own `kubectl` (so every context, auth plugin and kubeconfig the user has keeps working).

The cluster is asked when no file is named and nothing is piped in, or when --context,
--kubeconfig or -n is given. Each kind is one `kubectl get KIND -o json`; what goes wrong is
one line naming what to do.
"""

import argparse
import json
import subprocess
import sys
from typing import Any

from castslice.cli.inputs import Failure, documents


def add_source(parser: argparse.ArgumentParser, what: str) -> None:
    """The file argument and the flags passed on to kubectl."""
    parser.add_argument("file", nargs="?", help=f"{what}, or - for stdin (default: ask the "
                        "cluster with kubectl when nothing is piped in)")
    parser.add_argument("--context", help="kubectl context")
    parser.add_argument("--kubeconfig", help="kubeconfig file")
    parser.add_argument("-n", "--namespace", help="one namespace (default: all)")


def asks_cluster(args: argparse.Namespace) -> bool:
    """Whether the documents come from the cluster itself rather than a file or a pipe."""
    flags = args.context or args.kubeconfig or args.namespace
    if args.file is not None and flags:
        raise Failure("give a file or --context/--kubeconfig/-n, not both")
    return bool(flags) or (args.file is None and sys.stdin.isatty())


def read(args: argparse.Namespace, kinds: tuple[str, ...],
         optional: tuple[str, ...] = ()) -> list[Any]:
    """The documents to report on, from the file, stdin, or the cluster; `optional` kinds
    read only where the cluster serves them."""
    if not asks_cluster(args):
        return documents("-" if args.file is None else args.file)
    return [get(args, kind) for kind in kinds] + [
        found for kind in optional
        if (found := _run(command(args, kind), kind, unserved_ok=True)) is not None]


def _flags(args: argparse.Namespace) -> list[str]:
    line = ["--context", args.context] if args.context else []
    return line + (["--kubeconfig", args.kubeconfig] if args.kubeconfig else [])


def command(args: argparse.Namespace, kind: str) -> list[str]:
    """The kubectl command line for one kind, with the user's flags passed on."""
    line = ["kubectl", "get", kind, "-o", "json"]
    line += ["-n", args.namespace] if args.namespace else ["-A"]
    return line + _flags(args)


def get(args: argparse.Namespace, kind: str) -> Any:
    """One `kubectl get KIND -o json`, parsed; every failure one line."""
    return _run(command(args, kind), kind)


def dry_run(args: argparse.Namespace, document: dict[str, Any]) -> Any:
    """The object as the API server would store it (`kubectl create --dry-run=server`):
    defaults filled in, fields of disabled feature gates dropped; nothing is written."""
    line = ["kubectl", "create", "--dry-run=server", "-o", "json", "-f", "-", *_flags(args)]
    return _run(line, str(document.get("kind", "object")).lower() + "s", json.dumps(document))


def _run(line: list[str], kind: str, stdin: str | None = None,
         unserved_ok: bool = False) -> Any:
    """kubectl's JSON; with `unserved_ok`, None where the cluster does not serve `kind`."""
    if sys.stderr.isatty():
        print(f"castslice: {' '.join(line)}", file=sys.stderr)
    try:
        done = subprocess.run(line, capture_output=True, text=True, timeout=300, input=stdin)
    except FileNotFoundError:
        raise Failure("kubectl is not on PATH: install it, or pipe `kubectl get ... -o json` "
                      "into castslice") from None
    except subprocess.TimeoutExpired:
        raise Failure(f"{' '.join(line)} did not answer in 300 s") from None
    if done.returncode != 0 and unserved_ok and "doesn't have a resource type" in done.stderr:
        return None
    if done.returncode != 0:
        raise Failure(_explain(kind, done.stderr))
    try:
        listed = json.loads(done.stdout)
    except ValueError:
        raise Failure(f"{' '.join(line)} printed no JSON") from None
    if sys.stderr.isatty():
        count = len(listed.get("items", [])) if isinstance(listed, dict) else 0
        print(f"castslice: {count} {kind}", file=sys.stderr)
    return listed


def _explain(kind: str, stderr: str) -> str:
    said = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()),
                "no message")
    if "Forbidden" in stderr or "forbidden" in stderr:
        return (f"kubectl get {kind}: forbidden for this user; it needs get and list on "
                f"{kind} ({said[:160]})")
    if "doesn't have a resource type" in stderr:
        return (f"the cluster does not serve {kind}: it needs Kubernetes 1.34+ "
                "(resource.k8s.io/v1) with the DRA driver, or a back-end that does not use "
                "DRA (CASTSLICE_BACKEND)")
    return f"kubectl get {kind} failed: {said[:200]}"
