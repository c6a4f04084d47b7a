"""`castslice probe`: one real admission sent to an installed CastSlice, the way the API
server sends it, and its answer checked. `helm test` runs it from CastSlice's own image, so a
green test means the Service, the TLS chain the webhook trusts and the server all work."""

import argparse
import base64
import binascii
import http.client
import os
import ssl
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from castslice.cli.inputs import Failure, Register, seconds
from castslice.functions.annotations import OPTIMIZE


def register(command: Register) -> None:
    probe = command("probe", probe_webhook, "send one GPU Pod's AdmissionReview to a running "
                    "CastSlice and check its answer (what `helm test` runs)")
    probe.add_argument("url", help="the webhook's URL, e.g. "
                       "https://castslice.castslice.svc/mutate")
    probe.add_argument("--ca-file", help="the CA the webhook configuration trusts (default: "
                       "the system's)")
    probe.add_argument("--namespace", default="castslice-probe",
                       help="the namespace the probe Pod claims to be created in")
    probe.add_argument("--expect-patch", action="store_true",
                       help="fail unless the Pod is converted (it opts in by annotation)")
    probe.add_argument("--timeout", type=seconds(300), default=10.0,
                       help="seconds (default: 10)")


def probe_webhook(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    review = probe_review(args.namespace)
    started = time.perf_counter()
    status, body = post(args.url, orjson.dumps(review), args.ca_file, args.timeout)
    elapsed = (time.perf_counter() - started) * 1000
    if status != 200:
        raise Failure(f"{args.url} answered HTTP {status}: {body[:200].decode(errors='replace')}")
    summary = check_answer(body, review["request"]["uid"], args.expect_patch)
    print(f"castslice answered in {elapsed:.1f} ms: {summary}")
    return 0


def probe_review(namespace: str) -> dict[str, Any]:
    """A Pod CREATE that asks for one whole GPU and opts in by annotation."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "castslice-probe", "namespace": namespace,
                        "annotations": {OPTIMIZE: "true"}},
           "spec": {"containers": [{"name": "probe", "image": "registry.example/probe:1",
                                    "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": str(uuid.uuid4()),
                        "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "resource": {"group": "", "version": "v1", "resource": "pods"},
                        "name": "castslice-probe", "namespace": namespace,
                        "operation": "CREATE", "userInfo": {"username": "castslice-probe"},
                        "object": pod, "dryRun": True}}


def post(url: str, body: bytes, ca_file: str | None, timeout: float) -> tuple[int, bytes]:
    """POST as the API server does: HTTP/1.1, JSON, the webhook's timeout in the query."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Failure(f"{url}: not an http(s) URL")
    connection: http.client.HTTPConnection
    if ca_file is not None and not os.access(ca_file, os.R_OK):
        raise Failure(f"--ca-file {ca_file}: no such readable file")
    try:
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=ca_file)
            connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443,
                                                     timeout=timeout, context=context)
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port or 80,
                                                    timeout=timeout)
        connection.request("POST", f"{parts.path or '/'}?timeout={int(timeout)}s", body,
                           {"Content-Type": "application/json", "Accept": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    except ssl.SSLCertVerificationError as error:
        hint = ("" if ca_file else ": pass --ca-file with the CA the webhook configuration "
                "trusts (its caBundle), e.g. the castslice-tls Secret's ca.crt")
        raise Failure(f"{url}: certificate verify failed ({error.verify_message}){hint}") from None
    except (OSError, ssl.SSLError, http.client.HTTPException) as error:
        raise Failure(f"{url}: {error}") from None


def check_answer(body: bytes, uid: str, expect_patch: bool) -> str:
    """What the API server would refuse, as one line; else what CastSlice did."""
    try:
        answer = orjson.loads(body)
        response = answer["response"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise Failure(f"the answer is not an AdmissionReview: {body[:200]!r}") from None
    if answer.get("apiVersion") != "admission.k8s.io/v1" or answer.get("kind") != (
            "AdmissionReview"):
        raise Failure("the answer is not an admission.k8s.io/v1 AdmissionReview")
    if response.get("uid") != uid:
        raise Failure(f"the answer's uid {response.get('uid')!r} is not the request's {uid}")
    if response.get("allowed") is not True:
        raise Failure(f"the probe Pod was refused: {response.get('status')}")
    warnings = "; ".join(response.get("warnings") or []) or "none"
    if "patch" not in response:
        if expect_patch:
            raise Failure(f"the probe Pod was left unchanged (warnings: {warnings}); the "
                          "namespace may be excluded (CASTSLICE_EXCLUDE_NAMESPACES, CastSlice's "
                          f"own) or the back-end cannot grant one GPU: the server logs why, "
                          f"under uid {uid}")
        return (f"allowed, unchanged (warnings: {warnings}); an answer carries no reason: "
                "the namespace may be excluded (CASTSLICE_EXCLUDE_NAMESPACES, CastSlice's own) "
                "or the opt-in refused by the configuration; the server's log line for this "
                "uid says which")
    operations = len(patch_of(response))
    sliced = (response.get("auditAnnotations") or {}).get("sliced")
    return f"allowed, converted in {operations} patch operations: {sliced or 'no summary'}"


def patch_of(response: dict[str, Any]) -> list[Any]:
    """The JSONPatch the API server would apply, or a Failure saying why it would not."""
    if response.get("patchType") != "JSONPatch":
        raise Failure(f"patchType {response.get('patchType')!r} is not JSONPatch")
    try:
        patch = orjson.loads(base64.b64decode(response["patch"], validate=True))
    except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError):
        raise Failure("the patch is not base64 of a JSON document") from None
    if not isinstance(patch, list) or not patch:
        raise Failure("the patch is not a list of operations")
    return patch
