"""Hostile bodies made from golden events, and what every answer to them must satisfy.

Shared by the short fuzz in the test suite and the long one behind `make fuzz`.
"""

import base64
import copy
import json
import random
from pathlib import Path
from typing import Any

import jsonpatch
import orjson

from castslice.functions.patch import CONTAINER_LISTS
from castslice.handler.view import decode_view

ROOT = Path(__file__).parent.parent
SOURCE = "nvidia.com/gpu"
SEEDS = [orjson.loads(p.read_bytes())["request"] for p in sorted((ROOT / "events").glob("*.json"))]
DEEP = "\x00deep\x00"
"""Stands for nesting deeper than any JSON encoder writes; spliced into the bytes."""
QUANTITIES = ["1E", "2E", "1Ei", "1e0", "1e3", "0.5", "500m", "-1", "+1", "0", "00", "1e999",
              "9" * 20, "9" * 400, "9" * 5000, "\u0663", " 2", "", "1.", ".5", "1k", "8"]


def hostile_value(rng: random.Random) -> Any:
    """A value of the wrong type, size or depth for wherever it is put."""
    return rng.choice([
        lambda: 10 ** rng.randint(18, 400), lambda: -(2**63), lambda: 1e308, lambda: -0.0,
        lambda: rng.choice(QUANTITIES), lambda: None, lambda: True, lambda: {}, lambda: [],
        lambda: "x" * rng.randint(1, 20_000), lambda: DEEP, lambda: [DEEP],
        lambda: {"nvidia.com/gpu": rng.choice(QUANTITIES)}, lambda: [1, "a", None],
        lambda: "\u202e\u0000\t\"\\", lambda: rng.randint(-5, 5),
    ])()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _put(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return document


ANNOTATIONS = ("castops.io/slice-ratio", "castops.io/workload-type", "castops.io/optimize")


def _annotate(document: Any, key: str, value: Any) -> None:
    """Opt the Pod in and set one of CastSlice's annotations, where the shape allows."""
    for step in ("request", "object", "metadata"):
        document = document.get(step) if isinstance(document, dict) else None
    metadata = document
    if isinstance(metadata, dict):
        annotations = metadata.setdefault("annotations", {})
        if isinstance(annotations, dict):
            annotations.setdefault("castops.io/optimize", "true")
            annotations[key] = value


def hostile_body(rng: random.Random) -> bytes:
    """A golden request with one to three values replaced anywhere, sometimes with its
    bytes broken too (invalid UTF-8, a duplicate key, a cut)."""
    document = copy.deepcopy(rng.choice(SEEDS))
    for _ in range(rng.randint(1, 3)):
        document = _put(document, rng.choice(_paths(document)), hostile_value(rng))
    if rng.random() < 0.1:  # where the decision reads user text: CastSlice's own annotations
        _annotate(document, rng.choice(ANNOTATIONS),
                  rng.choice(["9" * 5000, "1" * 4301, [DEEP], hostile_value(rng)]))
    depth = rng.choice((300, 1100))  # past orjson's writer (255) and Python's recursion
    body = json.dumps(document).encode().replace(  # json: orjson refuses integers past 64 bits
        json.dumps(DEEP).encode(), b"[" * depth + b"]" * depth)
    roll = rng.random()
    if roll < 0.05:
        at = rng.randrange(len(body))
        body = body[:at] + rng.choice((b"\xff", b"\xc3", b"\xed\xa0\x80")) + body[at:]
    elif roll < 0.10:
        body = body.replace(b'"uid":', b'"uid":"dup","uid":', 1)
    elif roll < 0.12:
        body = body[: rng.randrange(len(body))]
    return body


def read_back(body: bytes) -> Any:
    """The request as the server read it: all of it, or where orjson refuses the JSON
    (nesting past 255, a number past a double, in a field the decision never reads) the
    fields the server's view decoded."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        view = decode_view(body)
        assert view is not None, "answered, yet neither parse reads the body"
        return view


def check_answer(body: bytes, status: int, payload: bytes, target: str) -> str:
    """What kind of answer this is; raises AssertionError when an invariant fails."""
    assert status < 500, (status, payload[:300])
    if status != 200:
        assert status in (400, 413, 415), status
        assert orjson.loads(payload)["title"]
        return f"http-{status}"
    request = read_back(body)["request"]
    answer = orjson.loads(payload)
    assert answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == request["uid"]
    assert all(len(w) <= 120 for w in response.get("warnings", ()))
    if "patch" not in response:
        return "fallback" if "could not process" in str(response.get("warnings")) else "answered"
    ops = orjson.loads(base64.b64decode(response["patch"]))
    original = request["object"]
    pod = jsonpatch.apply_patch(copy.deepcopy(original), ops)
    for list_name in CONTAINER_LISTS:
        for before, after in zip(_containers(original, list_name), _containers(pod, list_name),
                                 strict=True):
            source, granted = _resources(before, SOURCE), _resources(after, target)
            converted = granted and not _resources(after, SOURCE)
            if len(source) == 2 and source[0] == source[1] and converted:
                assert len(granted) == 2 and granted[0] == granted[1], after  # still equal
    return "mutated"


def _containers(pod: Any, list_name: str) -> list[Any]:
    spec = pod.get("spec")
    found = spec.get(list_name) if isinstance(spec, dict) else None
    return found if isinstance(found, list) else []


def _resources(container: Any, name: str) -> list[Any]:
    """The container's limits and requests of `name`, where both sections are maps."""
    resources = container.get("resources") if isinstance(container, dict) else None
    sections = [resources.get(s) for s in ("limits", "requests")] if isinstance(
        resources, dict) else []
    return [section[name] for section in sections if isinstance(section, dict)
            and name in section] if len(sections) == 2 else []
