"""The part of an AdmissionReview the decision, the log and the metrics read, decoded
without the rest.

A Pod as the API server sends it is mostly what CastSlice never reads: managedFields,
env, probes, volumes. Decoding only the fields below (msgspec skips the others while
checking the JSON) costs ~10 µs for the typical 8.5 KB Pod where parsing all of it costs
~29 µs (bench/README.md). The view holds the same values under the same keys as a full
parse, and a key absent from the request stays absent, so the pure core decides exactly
as on the whole review (a test compares both for every golden event and for hostile
bodies). Every field is typed as the API server sends it (strings, maps of strings, a
boolean): anything else, a field of another type anywhere on the way, is decoded by the
full parse instead, which checks it field by field as before, so odd values are judged by
one code path only. A capture needs the whole review, so capture reads the full parse.
"""

from typing import Any

import msgspec

UNSET: Any = msgspec.UNSET
Unset = msgspec.UnsetType
Text = str | Unset
Map = dict[str, str] | Unset


class _Resources(msgspec.Struct, omit_defaults=True):
    limits: Map = UNSET
    requests: Map = UNSET
    claims: list[dict[str, str]] | Unset = UNSET


class _Container(msgspec.Struct, omit_defaults=True):
    name: Text = UNSET
    resources: _Resources | Unset = UNSET
    restartPolicy: Text = UNSET


class _Metadata(msgspec.Struct, omit_defaults=True):
    name: Text = UNSET
    generateName: Text = UNSET
    namespace: Text = UNSET
    annotations: Map = UNSET
    labels: Map = UNSET


class _Spec(msgspec.Struct, omit_defaults=True):
    initContainers: list[_Container] | Unset = UNSET
    containers: list[_Container] | Unset = UNSET
    ephemeralContainers: list[_Container] | Unset = UNSET
    resourceClaims: list[dict[str, str]] | Unset = UNSET


class _Pod(msgspec.Struct, omit_defaults=True):
    metadata: _Metadata | Unset = UNSET
    spec: _Spec | Unset = UNSET


class _Request(msgspec.Struct, omit_defaults=True):
    uid: Text = UNSET
    kind: Map = UNSET
    subResource: Text = UNSET
    namespace: Text = UNSET
    name: Text = UNSET
    operation: Text = UNSET
    dryRun: bool | Unset = UNSET
    object: _Pod | Unset = UNSET


class _Review(msgspec.Struct, omit_defaults=True):
    apiVersion: Text = UNSET
    kind: Text = UNSET
    request: _Request | Unset = UNSET


_DECODER = msgspec.json.Decoder(_Review)


def decode_view(body: bytes | bytearray) -> dict[str, Any] | None:
    """The review's decision fields as plain dicts and lists, or None when the body is
    not one the view can hold (then the caller parses all of it)."""
    try:
        body.decode()  # msgspec skips a field without checking its text; orjson would refuse
        view: dict[str, Any] = msgspec.to_builtins(_DECODER.decode(body))
    except (msgspec.DecodeError, ValueError, RecursionError):  # bad UTF-8 is a ValueError
        return None
    return view
