"""Where captured events live: a directory or an S3 prefix, as gzip JSON-lines batches.

Keys are `PREFIX/YYYY/MM/DD/HHMMSS-<pid>-<seq>.jsonl.gz`: listing a day is one prefix
listing, and a batch is one PUT, not one per admission (see docs/loop.md, "Capture"). A batch
starts with its configuration line, so a replay can decide again under what decided then.
"""

import gzip
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import orjson

SUFFIX = ".jsonl.gz"
CONFIGURATION = "configuration"
"""Key of a batch's first line: every setting (as CASTSLICE_* variables, `Config.as_env`)
its events were decided under, with the version and fingerprint; event lines follow."""


class Store(Protocol):
    def write(self, lines: list[bytes]) -> str: ...
    def keys(self, since: date | None, until: date | None) -> Iterator[str]: ...
    def read(self, key: str) -> bytes: ...


class StoreError(Exception):
    """The capture location cannot be used; the message says why."""


def line(record: dict[str, Any]) -> bytes:
    """One record as a JSON line; raises for what JSON cannot hold (orjson refuses nesting
    deeper than 255 and integers beyond 64 bits), so a caller can skip that one record."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def encode(lines: list[bytes]) -> bytes:
    return gzip.compress(b"".join(lines), compresslevel=5)


def decode(blob: bytes) -> Iterator[dict[str, Any]]:
    for line in gzip.decompress(blob).splitlines():
        if line.strip():
            yield orjson.loads(line)


def batch_key(sequence: int, now: float) -> str:
    stamp = time.gmtime(now)
    return (time.strftime("%Y/%m/%d/%H%M%S", stamp)
            + f"-{os.getpid()}-{sequence:06d}{SUFFIX}")


def _days(since: date | None, until: date | None) -> list[str] | None:
    """Day prefixes to list, or None for everything."""
    if since is None or until is None:
        return None
    return [(since + timedelta(d)).strftime("%Y/%m/%d/") for d in range((until - since).days + 1)]


def _in_range(key: str, since: date | None, until: date | None) -> bool:
    day = key[:10].replace("/", "-")
    return (since is None or day >= since.isoformat()) and (
        until is None or day <= until.isoformat())


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sequence = 0

    def write(self, lines: list[bytes]) -> str:
        self.sequence += 1
        key = batch_key(self.sequence, time.time())
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(encode(lines))
        partial.replace(path)  # readers never see half a batch
        return key

    def keys(self, since: date | None, until: date | None) -> Iterator[str]:
        if not self.root.is_dir():
            raise StoreError(f"{self.root}: no such directory of captured events")
        for path in sorted(self.root.rglob(f"*{SUFFIX}")):
            key = path.relative_to(self.root).as_posix()
            if _in_range(key, since, until):
                yield key

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


class S3Store:
    """boto3 with its standard credential chain; AWS_REGION and AWS_ENDPOINT_URL_S3 (or
    AWS_ENDPOINT_URL) from the environment reach MinIO and other S3-compatible stores."""

    def __init__(self, bucket: str, prefix: str) -> None:
        try:
            import boto3
        except ImportError:
            raise StoreError("s3:// capture needs boto3: pip install 'castslice[s3]'") from None
        self.client = boto3.client("s3")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.sequence = 0

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def write(self, lines: list[bytes]) -> str:
        self.sequence += 1
        key = batch_key(self.sequence, time.time())
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=encode(lines),
                               ContentType="application/x-ndjson", ContentEncoding="gzip")
        return key

    def keys(self, since: date | None, until: date | None) -> Iterator[str]:
        with self._errors():
            paginator = self.client.get_paginator("list_objects_v2")
            for day in _days(since, until) or [""]:
                for page in paginator.paginate(Bucket=self.bucket, Prefix=self._full(day)):
                    for item in page.get("Contents", []):
                        key = item["Key"][len(self._full("")):]
                        if key.endswith(SUFFIX) and _in_range(key, since, until):
                            yield key

    def read(self, key: str) -> bytes:
        with self._errors():
            answer = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
            body: bytes = answer["Body"].read()
        return body

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """botocore's failures as one line naming the bucket and what to do."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = f"s3://{self.bucket}/{self.prefix}"
        try:
            yield
        except (NoCredentialsError, PartialCredentialsError):
            raise StoreError(f"{where}: no AWS credentials: set AWS_ACCESS_KEY_ID and "
                             "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where a role "
                             "provides them") from None
        except EndpointConnectionError as error:
            raise StoreError(f"{where}: cannot reach {error.kwargs.get('endpoint_url')}: "
                             "check AWS_ENDPOINT_URL_S3 / AWS_REGION and the network") from None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            said = {"NoSuchBucket": "no such bucket (check the name and AWS_REGION)",
                    "AccessDenied": "access denied: the credentials need s3:ListBucket and "
                    "s3:GetObject on it"}.get(code, f"{code}: {error}")
            raise StoreError(f"{where}: {said}") from None
        except BotoCoreError as error:
            raise StoreError(f"{where}: {error}") from None


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
"""S3's bucket naming rules (general purpose buckets), checked before botocore is asked."""


def open_store(location: str) -> Store:
    """A store for file:///dir, s3://bucket/prefix, or a plain directory path."""
    url = urlparse(location)
    if url.scheme == "s3":
        if not _BUCKET.fullmatch(url.netloc):
            raise StoreError(f"{location}: {url.netloc!r} is not an S3 bucket name (3-63 "
                             "lowercase letters, digits, '.' and '-'); write "
                             "s3://bucket/prefix")
        return S3Store(url.netloc, url.path)
    if url.scheme in ("file", ""):
        return FileStore(Path(url.path if url.scheme else location))
    raise StoreError(f"{location}: use file:///dir, s3://bucket/prefix or a directory")
