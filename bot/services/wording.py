"""Short words that several flows share, rendered from templates: the labels of the
registration and people buttons (``reg_label``) and the name of a role (``people_role``).

Kept apart from the flows that use them (registration, verification, ``/me``, ``/people``) so
that none of those has to import another for a word.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.runtime import Runtime


def label(runtime: Runtime, lang: str, name: str) -> str:
    """A button label of the registration and people screens (``approve``, ``suspend``…)."""
    return runtime.renderer.render("reg_label", lang, key=name)


def role_name(runtime: Runtime, lang: str, role: str) -> str:
    """A role as people read it, in ``lang``."""
    return runtime.renderer.render("people_role", lang, role=role)
