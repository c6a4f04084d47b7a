"""Golden events: recorded AdmissionReviews with the answer CastSlice must give (SPEC §6).

One case per file, `events/<what-it-shows>.json`:
  description  what the case shows, in a sentence
  env          CASTSLICE_* variables for this case, layered over the replaying environment
  request      the AdmissionReview as the API server sent it
  expected     the answer, with `patch` shown decoded (the wire form is base64 of it)
"""

import base64
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from castslice.functions.admit import admit, check_review
from castslice.settings.config import Config


@dataclass(frozen=True, slots=True)
class Case:
    path: Path
    description: str
    env: Mapping[str, str]
    request: Any
    expected: Any

    @property
    def name(self) -> str:
        return self.path.stem


def load_cases(directory: Path) -> list[Case]:
    """Every case in `directory`, by name; ValueError names a file that is not a case."""
    cases = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = orjson.loads(path.read_bytes())
            cases.append(Case(path, data.get("description", ""), data.get("env", {}),
                              data["request"], data["expected"]))
        except (orjson.JSONDecodeError, KeyError, AttributeError) as error:
            raise ValueError(f"{path}: not a golden case ({error})") from None
    return cases


def is_case(document: Any) -> bool:
    """Whether a document is a golden case (what `castslice review` may also be given)."""
    env = document.get("env", {}) if isinstance(document, dict) else None
    return isinstance(env, dict) and {"request", "expected"} <= document.keys() and all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items())


def readable(response: Any) -> Any:
    """The response with its patch decoded, as golden files show it."""
    answer = response.get("response", {})
    if "patch" not in answer:
        return response
    patch = orjson.loads(base64.b64decode(answer["patch"]))
    return response | {"response": answer | {"patch": patch}}


def answer(case: Case, base_env: Mapping[str, str]) -> Any:
    """What the current code and config answer to the case's request, in readable form."""
    policy = Config.from_env({**base_env, **case.env}).policy
    return readable(admit(check_review(case.request), policy).response)


def diff(name: str, expected: Any, actual: Any) -> str:
    """A unified diff from expected to actual; empty when they agree."""
    if actual == expected:
        return ""
    before, after = dumps(expected).splitlines(), dumps(actual).splitlines()
    return "\n".join(difflib.unified_diff(before, after, f"{name} expected",
                                         f"{name} actual", lineterm=""))


def write(case: Case, expected: Any) -> None:
    """Rewrite the case file with a new expected answer (only `replay --update` does)."""
    data = {"description": case.description, "env": dict(case.env),
            "request": case.request, "expected": expected}
    case.path.write_text(dumps(data))


def dumps(data: Any) -> str:
    """Sorted keys, indent 2, trailing newline: stable diffs for people."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
