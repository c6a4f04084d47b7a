"""`castslice ready`: wait until the API server really converts an opted-in GPU Pod.

After an install, a Deployment can report ready before the API server can reach it (kube-proxy
may not have programmed the Service yet), and `failurePolicy: Ignore` then admits the first
Pods unconverted. This asks the API server itself: a server-side dry run of an opted-in Pod
asking one GPU, repeated until the Pod it would store carries castops.io/sliced. Nothing is
created. Through the user's kubectl, or (`--in-cluster`, the chart's post-install hook) with
the Pod's own ServiceAccount, as the image holds no kubectl.
"""

import argparse
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from castslice.cli import kubectl
from castslice.cli.inputs import Failure, Register, load_config, one_document, seconds
from castslice.functions.annotations import OPTIMIZE, SLICED

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def register(command: Register) -> None:
    ready = command("ready", wait_ready, "wait until the API server converts an opted-in GPU "
                    "Pod (a server-side dry run; nothing is created); exit 1 at the timeout")
    ready.add_argument("-n", "--namespace", default="default",
                       help="where the dry-run Pod is created (default: default; not a "
                       "namespace CastSlice excludes or whose quota the guard names)")
    ready.add_argument("--timeout", type=seconds(3600), default=120.0, metavar="SECONDS",
                       help="give up after this long (default 120)")
    ready.add_argument("--pod", metavar="FILE", help="the Pod to dry-run instead (YAML or "
                       "JSON): one that opts in and asks the source resource")
    ready.add_argument("--context", help="kubectl context")
    ready.add_argument("--kubeconfig", help="kubeconfig file")
    ready.add_argument("--in-cluster", action="store_true", help="ask with this Pod's "
                       "ServiceAccount (the chart's hook), not kubectl")
    ready.add_argument("--server", default="https://kubernetes.default.svc",
                       help=argparse.SUPPRESS)
    ready.add_argument("--account", type=Path, default=ACCOUNT, help=argparse.SUPPRESS)


def probe_pod(source: str, namespace: str) -> dict[str, Any]:
    """The smallest Pod CastSlice converts: opted in, one container asking one GPU."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "castslice-ready-", "namespace": namespace,
                         "annotations": {OPTIMIZE: "true"}},
            "spec": {"containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"limits": {source: "1"}}}]}}


def wait_ready(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    pod = (one_document(args.pod) if args.pod else
           probe_pod(load_config(env).policy.source_resource, args.namespace))
    if not isinstance(pod, dict) or pod.get("kind") != "Pod":
        raise Failure(f"{args.pod}: expected one Pod")
    pod.setdefault("metadata", {})["namespace"] = args.namespace
    started = time.monotonic()
    tries, said = 0, ""
    while True:
        tries += 1
        stored, said = _dry_run(args, pod)
        sliced = stored.get("metadata", {}).get("annotations", {}).get(SLICED)
        if sliced:
            print(f"castslice: converted after {time.monotonic() - started:.1f} s "
                  f"({tries} dry run{'s' * (tries != 1)}): {sliced}")
            return 0
        if time.monotonic() - started + 1 > args.timeout:
            break
        time.sleep(1)
    last = said or "stored unconverted"
    print(f"castslice: the API server did not convert an opted-in GPU Pod in namespace "
          f"{args.namespace} within {args.timeout:g} s ({tries} dry runs; last: {last}); "
          "castslice doctor says why", file=sys.stderr)
    return 1


def _dry_run(args: argparse.Namespace, pod: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The Pod as the API server would store it, and what it said (warnings, a refusal)."""
    if not args.in_cluster:
        try:
            return kubectl.dry_run(args, pod), ""
        except Failure as refused:
            return {}, str(refused)
    token = (args.account / "token").read_text().strip()
    context = ssl.create_default_context(cafile=str(args.account / "ca.crt"))
    request = urllib.request.Request(
        f"{args.server}/api/v1/namespaces/{args.namespace}/pods?dryRun=All",
        data=json.dumps(pod).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            return json.loads(answer.read()), answer.headers.get("Warning", "")
    except urllib.error.HTTPError as error:
        return {}, f"HTTP {error.code}: {error.read()[:200].decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as error:
        return {}, str(getattr(error, "reason", error))
