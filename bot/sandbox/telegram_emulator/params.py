"""Bot API request parameters, typed the way Telegram reads them.

Telegram accepts the same parameter as a query-string value, a form field, a multipart part or
a JSON value. Form and query values are strings, and structured values (``reply_markup``,
``entities``, ``scope``…) arrive JSON-encoded inside them; a JSON body carries native values.
:class:`Params` hides that difference and raises Telegram's 400s for missing or malformed values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import bad_request


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    content: bytes


class Params:
    """Read-only typed access to one call's parameters."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __contains__(self, name: str) -> bool:
        return self._values.get(name) not in (None, "")

    def raw(self) -> dict[str, Any]:
        """The parameters as received, with uploads summarised (for the call log)."""
        out: dict[str, Any] = {}
        for key, value in self._values.items():
            if isinstance(value, Upload):
                out[key] = {"upload": value.filename, "size": len(value.content)}
            else:
                out[key] = value
        return out

    def get(self, name: str) -> Any:
        return self._values.get(name)

    def chat_id(self, name: str = "chat_id") -> int | str:
        """A chat id: an integer, or ``@username`` for public chats."""
        value = self._required(name)
        if isinstance(value, str) and value.startswith("@"):
            return value
        return self._to_int(name, value)

    def integer(self, name: str) -> int:
        return self._to_int(name, self._required(name))

    def opt_integer(self, name: str) -> int | None:
        return self._to_int(name, self._values[name]) if name in self else None

    def text(self, name: str) -> str:
        value = self._required(name)
        if not isinstance(value, str):
            raise bad_request(f"{name} must be a string")
        return value

    def opt_text(self, name: str) -> str | None:
        value = self._values.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise bad_request(f"{name} must be a string")
        return value

    def flag(self, name: str) -> bool:
        value = self._values.get(name)
        if value is None or value == "":
            return False
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise bad_request(f"invalid {name} specified")

    def structured(self, name: str) -> Any:
        """A structured parameter, decoding the JSON string a form field carries."""
        value = self._values.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {name} JSON object") from None
        return value

    def file(self, name: str) -> Upload | str:
        """An uploaded file, or a string (file_id or URL); ``attach://x`` points at part ``x``."""
        value = self._required(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = self._values.get(value.removeprefix("attach://"))
            if value is None:
                raise bad_request(f"{name} attachment not found")
        if isinstance(value, Upload | str):
            return value
        raise bad_request(f"invalid {name} specified")

    def _required(self, name: str) -> Any:
        value = self._values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        return value

    @staticmethod
    def _to_int(name: str, value: Any) -> int:
        if isinstance(value, bool):
            raise bad_request(f"invalid {name} specified")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None
