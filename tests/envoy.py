"""Envoy's own schema for the front's configuration: the generated protobuf types of the
`xds-protos` package, parsed strictly (an unknown field or a wrong type is an error) and
every `typed_config` resolved to the message its `@type` names."""

import importlib
import pkgutil
from typing import Any

from envoy.config.bootstrap.v3.bootstrap_pb2 import Bootstrap
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryResponse
from google.protobuf import json_format
from google.protobuf.message import Message

TYPE_PREFIX = "type.googleapis.com/"


def parse_bootstrap(config: dict[str, Any]) -> Bootstrap:
    return _parse(config, Bootstrap())


def parse_sds(resources: dict[str, Any]) -> DiscoveryResponse:
    """A file-based SDS resource set, which Envoy reads as a DiscoveryResponse."""
    return _parse(resources, DiscoveryResponse())


def _parse(config: dict[str, Any], message: Message) -> Any:
    for type_url in _type_urls(config):
        _load_package_of(type_url)
    return json_format.ParseDict(config, message, ignore_unknown_fields=False)


def _type_urls(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["@type"]} if "@type" in value else set()
        return found.union(*(_type_urls(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_type_urls(v) for v in value))
    return set()


def _load_package_of(type_url: str) -> None:
    """Import every module of the named type's package, so the descriptor pool knows it; a
    type no package defines stays unknown and ParseDict refuses it."""
    assert type_url.startswith(TYPE_PREFIX), type_url
    package = type_url[len(TYPE_PREFIX):].rpartition(".")[0]
    try:
        module = importlib.import_module(package)
    except ImportError:
        return
    for info in pkgutil.iter_modules(module.__path__):
        if info.name.endswith("_pb2"):
            importlib.import_module(f"{package}.{info.name}")
