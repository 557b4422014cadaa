"""A refused action as services report it: which message to show, and what fills it.

Services never word a refusal themselves; the flow that called them renders ``template`` in the
person's language with ``context``.
"""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    """An action that cannot be applied; ``template`` names the message to show."""

    def __init__(self, template: str, **context: Any) -> None:
        super().__init__(template)
        self.template = template
        self.context = context
