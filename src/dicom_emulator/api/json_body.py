"""JSON request bodies (workitems, extended query tags) read with a size cap and parsed without recursion errors.

These bodies are small by nature; reading one whole with ``request.body()`` let a 300 MB body cost 1 GB of
memory, and JSON nested ~1,000 deep made the parser raise RecursionError (a 500).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from dicom_emulator.errors import PayloadTooLargeError


class JsonBodyTooLargeError(PayloadTooLargeError):
    """A JSON body over ``--max-json-body-size`` (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit} bytes.")


async def read_capped(request: Request) -> bytes:
    """The whole body, refusing (413) as soon as it grows past the configured limit, before reading the rest."""
    limit: int = request.app.state.runtime.settings.max_json_body_size
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise JsonBodyTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise JsonBodyTooLargeError(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """``json.loads``; nesting too deep for the parser is a ValueError like any other syntax error."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
