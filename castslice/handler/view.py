"""The part of an AdmissionReview the decision, the log and the metrics read, decoded
without the rest.

A Pod as the API server sends it is mostly what CastSlice never reads: managedFields,
env, probes, volumes. Decoding only the fields below (msgspec skips the others while
checking the JSON) costs ~8 µs for the typical 8.5 KB Pod where parsing all of it costs
~29 µs (bench/README.md). The view holds the same values under the same keys as a full
parse, and a key absent from the request stays absent, so the pure core decides exactly
as on the whole review (a test compares both for every golden event and for hostile
bodies). Every field is typed as the API server sends it (strings, maps of strings, a
boolean): anything else, a field of another type anywhere on the way, is decoded by the
full parse instead, which checks it field by field as before, so odd values are judged by
one code path only. A capture needs the whole review, so capture reads the full parse.
The shapes are TypedDicts, so msgspec builds the plain dicts the core reads directly
(Structs and a `to_builtins` after them cost ~2 µs more).
"""

from typing import Any, TypedDict

import msgspec

Map = dict[str, str]


class _Resources(TypedDict, total=False):
    limits: Map
    requests: Map
    claims: list[Map]


class _Container(TypedDict, total=False):
    name: str
    resources: _Resources
    restartPolicy: str


class _Metadata(TypedDict, total=False):
    name: str
    generateName: str
    namespace: str
    annotations: Map
    labels: Map


class _Spec(TypedDict, total=False):
    initContainers: list[_Container]
    containers: list[_Container]
    ephemeralContainers: list[_Container]
    resourceClaims: list[Map]


class _Pod(TypedDict, total=False):
    metadata: _Metadata
    spec: _Spec


class _Request(TypedDict, total=False):
    uid: str
    kind: Map
    subResource: str
    namespace: str
    name: str
    operation: str
    dryRun: bool
    object: _Pod


class _Review(TypedDict, total=False):
    apiVersion: str
    kind: str
    request: _Request


_DECODER = msgspec.json.Decoder(_Review)


def decode_view(body: bytes | bytearray) -> dict[str, Any] | None:
    """The review's decision fields as plain dicts and lists, or None when the body is
    not one the view can hold (then the caller parses all of it)."""
    try:
        body.decode()  # msgspec skips a field without checking its text; orjson would refuse
        view: dict[str, Any] = _DECODER.decode(body)  # type: ignore[assignment]
    except (msgspec.DecodeError, ValueError, RecursionError):  # bad UTF-8 is a ValueError
        return None
    return view
