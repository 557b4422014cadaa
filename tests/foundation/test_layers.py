"""The layer rules of the house, checked on the import graph rather than only written down.

The graph is grimp's (it parses every ``import`` statement of the project's packages, including
imports inside functions, so an import tucked into a function to dodge a cycle still counts).
Imports under ``if TYPE_CHECKING:`` never run: they are left out of the cycle check and of the
indirect chains, but a lower layer may not name a higher one even there.

Handlers import no messenger and open no database session: the flows parse, call a service and
render a template. The handler modules that still open sessions (issue 19) are listed below; the
list only shrinks (a module that keeps the rule is refused a place on it).
Not asserted yet: ``bot.runtime`` (imported by services for typing only) reaches ``telegram``
through ``bot.metrics``.
"""

from __future__ import annotations

import ast
import graphlib
import importlib.util
from functools import cache
from pathlib import Path

import grimp
import pytest

PACKAGES = ("bot", "handlers", "storage", "scanner")


@cache
def _graph(*, typing_imports: bool) -> grimp.ImportGraph:
    return grimp.build_graph(
        *PACKAGES,
        include_external_packages=True,
        exclude_type_checking_imports=not typing_imports,
        cache_dir=None,  # grimp's on-disk cache once kept a merged module's old imports
    )


def _project_modules(graph: grimp.ImportGraph) -> set[str]:
    return {m for m in graph.modules if m.split(".")[0] in PACKAGES}


def _a_cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """One import cycle between the project's modules, or None."""
    modules = _project_modules(graph)
    order = graphlib.TopologicalSorter(
        {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    )
    try:
        order.prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_no_import_cycles() -> None:
    cycle = _a_cycle(_graph(typing_imports=False))
    assert cycle is None, f"import cycle: {' -> '.join(cycle or ())}"


# (lower layer, what it must never reach, directly or through other modules)
NEVER_REACHES = [
    ("storage", "bot"),
    ("storage", "handlers"),
    ("storage", "scanner"),
    ("scanner", "bot"),
    ("scanner", "handlers"),
    ("bot.services", "handlers"),
    ("bot.services", "telegram"),
    ("bot.services", "bot.channels.telegram"),  # services name no channel adapter
    ("bot.services", "bot.channels.zalo"),
    ("scanner", "telegram"),
    ("storage", "telegram"),
    ("bot.channels.base", "bot.buttons"),  # the Notifier protocol knows no permission rules
    ("bot.channels.base", "bot.services"),
    ("bot.channels.base", "telegram"),
]


@pytest.mark.parametrize(("low", "high"), NEVER_REACHES, ids=[f"{a}-{b}" for a, b in NEVER_REACHES])
def test_lower_layers_never_reach_higher_ones(low: str, high: str) -> None:
    chain = _graph(typing_imports=False).find_shortest_chain(
        importer=low, imported=high, as_packages=True
    )
    assert chain is None, f"{low} reaches {high}: {' -> '.join(chain or ())}"


NEVER_NAMES = [
    ("storage", "bot"),
    ("storage", "handlers"),
    ("scanner", "bot"),
    ("scanner", "handlers"),
    ("bot.services", "handlers"),
    ("bot.services", "telegram"),
    ("bot.services", "bot.channels.telegram"),
    ("bot.services", "bot.channels.zalo"),
    ("bot.channels.base", "bot.buttons"),
]


@pytest.mark.parametrize(("low", "high"), NEVER_NAMES, ids=[f"{a}-{b}" for a, b in NEVER_NAMES])
def test_lower_layers_do_not_name_higher_ones_even_for_typing(low: str, high: str) -> None:
    graph = _graph(typing_imports=True)
    found = graph.find_matching_direct_imports(import_expression=f"{low}.** -> {high}.**")
    found += graph.find_matching_direct_imports(import_expression=f"{low}.** -> {high}")
    assert not found, f"{low} imports {high}: {found}"


def test_the_checks_can_fail() -> None:
    """The checks see real imports: known edges are found, and a made-up import that breaks
    the rules (storage reaching up into bot/, closing a loop) is caught."""
    graph = grimp.build_graph(
        *PACKAGES,
        include_external_packages=True,
        exclude_type_checking_imports=True,
        cache_dir=None,
    )
    assert graph.find_shortest_chain(
        importer="bot.channels.telegram.membership", imported="telegram"
    )
    assert graph.direct_import_exists(importer="bot.flows", imported="handlers.people")
    assert _a_cycle(graph) is None
    graph.add_import(importer="storage.models", imported="bot.app")
    assert graph.find_shortest_chain(importer="storage", imported="bot", as_packages=True)
    assert _a_cycle(graph) is not None


# Handler modules that still open sessions or query the database themselves, where a service
# should.
SESSION_PENDING: set[str] = set()
DATABASE = ("sqlmodel", "sqlalchemy", "storage.db")


def _handler_modules() -> set[str]:
    graph = _graph(typing_imports=True)
    return {m for m in graph.modules if m.split(".")[0] == "handlers"}


def _imports(module: str, banned: tuple[str, ...]) -> set[str]:
    found = _graph(typing_imports=True).find_modules_directly_imported_by(module)
    return {i for i in found for b in banned if i == b or i.startswith(b + ".")}


def _opens_sessions(module: str) -> bool:
    """Whether the module calls ``….session(…)`` (a unit of work of its own)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "session"
        for node in ast.walk(tree)
    )


def _check_pending(offending: set[str], pending: set[str], rule: str) -> None:
    assert not offending - pending, f"handlers that {rule}: {sorted(offending - pending)}"
    kept = pending - offending
    assert not kept, f"these handlers no longer {rule}: remove them from the list: {sorted(kept)}"


def test_handlers_import_no_messenger() -> None:
    """Every messenger is an adapter in ``bot/channels/``; the flows are channel-neutral."""
    offending = {m for m in _handler_modules() if _imports(m, ("telegram",))}
    assert not offending, f"handlers that import telegram: {sorted(offending)}"


def test_handlers_leave_the_database_to_services() -> None:
    offending = {m for m in _handler_modules() if _imports(m, DATABASE) or _opens_sessions(m)}
    _check_pending(offending, SESSION_PENDING, "open database sessions or query directly")
