"""A client for the Prometheus HTTP API (`/api/v1/query`), as Prometheus, Thanos and Mimir
serve it: bearer token, basic auth, a CA file; every failure one line, naming what to do.

https://prometheus.io/docs/prometheus/latest/querying/api/
"""

import base64
import json
import math
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class PrometheusError(Exception):
    """Prometheus could not be asked, or refused the query: one line for the user."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant vector: its labels and a finite value."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Prometheus:
    """Where to ask, and how to authenticate; `timeout` in seconds per query."""

    url: str
    token: str | None = None
    basic: tuple[str, str] | None = None
    ca_file: str | None = None
    timeout: float = 60.0

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """An instant query's vector; NaN and infinite values are dropped (a series with
        no usable sample is absent, never a number)."""
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        data = self._get("/api/v1/query", params)
        if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
            raise PrometheusError(f"{self.url}: expected a vector for {expr[:80]!r}")
        found = []
        for item in data["result"]:
            sample = _sample(item)
            if sample is None:
                raise PrometheusError(f"{self.url}: a series of {expr[:60]!r} is not "
                                      f"[time, \"number\"]: {json.dumps(item)[:120]}")
            if math.isfinite(sample.value):
                found.append(sample)
        return found

    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = self.url.rstrip("/") + path
        request = urllib.request.Request(url, data=urllib.parse.urlencode(params).encode(),
                                         headers=self._headers(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self._tls()) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise PrometheusError(f"{url}: HTTP {error.code}: {_reason(error)}") from None
        except TimeoutError:
            raise PrometheusError(f"{self.url}: no answer in {self.timeout:g} s (--timeout); "
                                  "check --prometheus and that the server answers") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                raise PrometheusError(f"{self.url}: no answer in {self.timeout:g} s "
                                      "(--timeout)") from None
            raise PrometheusError(f"{self.url}: unreachable ({reason}); check --prometheus "
                                  "and that the server answers") from None
        except ValueError:
            raise PrometheusError(f"{url}: the answer is not JSON; is this a Prometheus "
                                  "HTTP API?") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            said = body.get("error") if isinstance(body, dict) else body
            raise PrometheusError(f"{url}: query refused: {str(said)[:200]}")
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.basic:
            pair = base64.b64encode(":".join(self.basic).encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        return headers

    def _tls(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https://"):
            return None
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as error:
            raise PrometheusError(f"--ca-file {self.ca_file}: {error}") from None


def _sample(item: object) -> Sample | None:
    """One result of an instant vector as the HTTP API writes it, or None when it is not
    {"metric": {...}, "value": [time, "number"]} (a proxy or another server's answer)."""
    if not isinstance(item, dict):
        return None
    labels, value = item.get("metric", {}), item.get("value")
    if not isinstance(labels, dict) or not isinstance(value, list) or len(value) != 2:
        return None
    try:
        return Sample({str(k): str(v) for k, v in labels.items()}, float(value[1]))
    except (TypeError, ValueError):
        return None


def _reason(error: urllib.error.HTTPError) -> str:
    """Prometheus' own error text when it sent one (bad PromQL: 400 with JSON)."""
    try:
        body = json.loads(error.read())
        return str(body.get("error", error.reason))[:200]
    except (ValueError, AttributeError, OSError):
        return str(error.reason)
