"""The one JSON decoder for everything that arrives from outside: client and federation
request bodies, query-string JSON (filters), and answers from other servers.

Beyond `json.loads` it refuses what would later break canonical JSON, signing or storage:
`NaN`/`Infinity` constants, numbers that overflow to infinity (`1e400`), strings holding a
lone UTF-16 surrogate (`"\\ud800"`, which no UTF-8 encoder accepts), and nesting deeper
than `MAX_DEPTH`. The checks after decoding only walk the value when a cheap scan of the
raw text says they could fail, so ordinary bodies pay almost nothing.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from homeserver.errors import Codes, MatrixError

#: deepest nesting of objects and arrays accepted (serde_json, used by the Rust servers,
#: stops at 128 as well)
MAX_DEPTH = 128

#: deepest content we accept for what clients receive in /sync: events, to-device
#: messages, account data. /sync sends event content 7 levels down
#: (rooms.join.<id>.timeline.events[].content; 8 for unsigned.prev_content as Synapse
#: sends it), and every response and federation transaction carrying it must stay within
#: MAX_DEPTH, ours and serde_json's (Rust servers and clients), or one deep message would
#: break every sync and transaction it is in
MAX_CONTENT_DEPTH = MAX_DEPTH - 8

# A `\u` escape of a UTF-16 surrogate (D800-DFFF). An escaped backslash before `u` also
# matches; the walk then finds nothing wrong.
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")


class JsonDecodeError(ValueError):
    """The text is not JSON we accept; `str(e)` says why."""


def _reject_constant(name: str) -> Any:
    raise JsonDecodeError(f"invalid JSON constant {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonDecodeError(f"number out of range: {text[:40]}")
    return value


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check(value: Any, check_depth: bool, check_strings: bool) -> None:
    # Iterative, so a deep value cannot overflow the stack here either.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if check_depth and depth > MAX_DEPTH:
                raise JsonDecodeError(f"JSON nested deeper than {MAX_DEPTH}")
            for key, child in item.items():
                if check_strings and _has_surrogate(key):
                    raise JsonDecodeError("lone surrogate in a string")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if check_depth and depth > MAX_DEPTH:
                raise JsonDecodeError(f"JSON nested deeper than {MAX_DEPTH}")
            stack.extend((child, depth + 1) for child in item)
        elif check_strings and isinstance(item, str) and _has_surrogate(item):
            raise JsonDecodeError("lone surrogate in a string")


def nesting_depth(value: Any) -> int:
    """How many objects and arrays deep `value` nests (a scalar is 0, `{"a": []}` is 2)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_content_depth(content: Any) -> None:
    """Raise 400 M_BAD_JSON for content nested deeper than `MAX_CONTENT_DEPTH`."""
    if nesting_depth(content) > MAX_CONTENT_DEPTH:
        raise MatrixError(400, Codes.BAD_JSON,
                          f"Content nested deeper than {MAX_CONTENT_DEPTH} levels")


def decode_json(raw: bytes | str) -> Any:
    """Decode JSON from outside.

    Raises:
        JsonDecodeError: not UTF-8, not JSON, or JSON we refuse (see the module docstring).
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonDecodeError("not UTF-8") from None
        raw_bytes = raw
    else:
        text = raw
        raw_bytes = raw.encode("utf-8", "surrogatepass")
    try:
        value = _decoder.decode(text)
    except RecursionError:
        raise JsonDecodeError(f"JSON nested deeper than {MAX_DEPTH}") from None
    except ValueError as e:
        raise JsonDecodeError(str(e)) from None
    check_depth = raw_bytes.count(b"{") + raw_bytes.count(b"[") > MAX_DEPTH
    check_strings = _SURROGATE_ESCAPE.search(raw_bytes) is not None or (
        isinstance(raw, str) and _has_surrogate(raw))
    if check_depth or check_strings:
        _check(value, check_depth, check_strings)
    return value
