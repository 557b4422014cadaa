"""Time and size limits for rendering press templates an admin may write.

Jinja2's ``SandboxedEnvironment`` keeps a template away from Python internals but not from the
CPU or the memory: ``{{ 'a' * 10**9 }}``, ``{{ 10**10**10 }}``, two nested loops over a 20,000
character field, or a macro calling itself twice per level all run for minutes or exhaust memory,
and the sandbox's own range cap raises a bare ``OverflowError``. A press template is rendered
inside the bot process while a crisis is running, so a bad one must fail in well under a second
with a message naming the template.

:class:`LimitedEnvironment` bounds every place where work or text can grow:

* binary operators ``*``, ``**``, ``+`` and ``%`` are intercepted and refused when their result
  would be over the size limit (checked *before* computing it);
* every call (macros, methods) and every filter passes the deadline check, refuses integer
  arguments over the size limit and format specifications asking for huge widths, and has its
  result's length checked;
* every ``for`` loop iterates through a counter that checks the deadline and a total iteration
  budget, and every ``~`` concatenation is measured before it is joined (a compile-time rewrite
  of the template tree, :class:`_Guards`);
* every printed value passes ``finalize`` (size), and :func:`render_limited` renders through
  the template's generator, counting the output and checking the deadline per chunk.

Exceeding a limit raises :class:`RenderLimitExceeded`, a ``SecurityError``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from typing import Any

from jinja2 import Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Environment
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_OUTPUT_CHARS = 200_000  # a press statement is a few thousand; fields are at most 20,000
MAX_SECONDS = 2.0
MAX_ITERATIONS = 1_000_000
MAX_POWER_BITS = 4_096
_HUGE_WIDTH = re.compile(rf"\d{{{len(str(MAX_OUTPUT_CHARS)) + 1},}}")


class RenderLimitExceeded(SecurityError):
    """A template went over the time, size or iteration limit; the message says which."""


@dataclass
class Budget:
    """What one render may still spend."""

    deadline: float
    iterations: int = 0
    output: int = 0
    max_output: int = MAX_OUTPUT_CHARS
    max_iterations: int = MAX_ITERATIONS
    seconds: float = MAX_SECONDS
    _ticks: int = field(default=0, repr=False)

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks % 64 == 0 and time.monotonic() > self.deadline:
            raise RenderLimitExceeded(f"rendering took longer than {self.seconds:g} s")

    def step(self) -> None:
        self.iterations += 1
        if self.iterations > self.max_iterations:
            raise RenderLimitExceeded(f"loops ran more than {self.max_iterations} times")
        self.tick()


_BUDGET: ContextVar[Budget | None] = ContextVar("press_template_budget", default=None)


def _budget() -> Budget:
    budget = _BUDGET.get()
    if budget is None:  # rendered outside render_limited (static checks, tests): default limits
        budget = Budget(deadline=time.monotonic() + MAX_SECONDS)
        _BUDGET.set(budget)
    return budget


def _too_long(what: str, size: int) -> RenderLimitExceeded:
    return RenderLimitExceeded(f"{what} would be {size} characters, over {MAX_OUTPUT_CHARS}")


def _check_size(value: Any, what: str) -> Any:
    if isinstance(value, str | list | tuple | bytes) and len(value) > MAX_OUTPUT_CHARS:
        raise _too_long(what, len(value))
    return value


def _check_args(args: Iterable[Any], what: str) -> None:
    for arg in args:
        if isinstance(arg, bool):
            continue
        if isinstance(arg, int | float) and abs(arg) > MAX_OUTPUT_CHARS:
            raise RenderLimitExceeded(f"{what}: the number {arg!r} is too large")
        if isinstance(arg, str) and ("%" in arg or "{" in arg) and _HUGE_WIDTH.search(arg):
            raise RenderLimitExceeded(f"{what}: a format width in {arg[:40]!r} is too large")


def guard_iter(iterable: Any) -> Iterator[Any]:
    """Iterate ``iterable`` against the render's iteration budget and deadline."""
    budget = _budget()
    for item in iterable:
        budget.step()
        yield item


def guard_concat(*parts: Any) -> str:
    """``a ~ b ~ …``, measured before the string is built."""
    texts = [str(p) for p in parts]
    total = sum(len(t) for t in texts)
    if total > MAX_OUTPUT_CHARS:
        raise _too_long("a '~' join", total)
    return "".join(texts)


def _binop_size(operator: str, left: Any, right: Any) -> int | None:
    """The length (or, for ``**``, bit length) the result would have, when it can grow."""
    sized = (str, list, tuple, bytes)
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, sized) and isinstance(times, int) and not isinstance(times, bool):
                return len(seq) * max(times, 0)
    if operator == "+" and isinstance(left, sized) and isinstance(right, sized):
        return len(left) + len(right)
    return None


class _Guards(NodeTransformer):
    """Rewrite loops and ``~`` so that both run through the budget (``guard_iter``,
    ``guard_concat``)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)  # changes the children in place
        node.iter = nodes.Call(
            nodes.ImportedName(f"{__name__}.guard_iter"), [node.iter], [], None, None
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(
            nodes.ImportedName(f"{__name__}.guard_concat"), node.nodes, [], None, None
        )


class _GuardedCodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        _Guards().visit(node)
        super().visit_Template(node, frame)


class LimitedEnvironment(SandboxedEnvironment):
    """The sandbox with the limits above."""

    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        self.filters = {name: _limited_filter(name, f) for name, f in self.filters.items()}
        self.globals["range"] = self._range

    @staticmethod
    def _finalize(value: Any) -> Any:
        _budget().tick()
        if isinstance(value, str | list | tuple):
            _check_size(value, "a printed value")
        return value

    @staticmethod
    def _range(*args: int) -> range:
        _check_args(args, "range()")
        return range(*args)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _budget().tick()
        size = _binop_size(operator, left, right)
        if size is not None and size > MAX_OUTPUT_CHARS:
            raise _too_long(f"'{operator}'", size)
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left).bit_length() * right > MAX_POWER_BITS
        ):
            raise RenderLimitExceeded(f"{left} ** {right} is too large")
        if operator == "%" and isinstance(left, str):
            _check_args([left], "'%' formatting")
        return _check_size(super().call_binop(context, operator, left, right), f"'{operator}'")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _budget().tick()
        name = str(getattr(__obj, "__name__", "a call")).lstrip("_")
        _check_args([*args, *kwargs.values()], f"{name}()")
        bound_to = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        if isinstance(bound_to, str):
            _check_args([bound_to], f"{name}()")
            if name == "replace" and args:
                _check_replace(bound_to, args)
        result = SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)
        return _check_size(result, f"{name}()")


def _check_replace(text: str, args: tuple[Any, ...]) -> None:
    """``text.replace(old, new)`` refused before it runs when the result would be too long."""
    old, new = (str(args[0]), str(args[1])) if len(args) > 1 else ("", "")
    count = text.count(old) if old else len(text) + 1
    size = len(text) + count * (len(new) - len(old))
    if size > MAX_OUTPUT_CHARS:
        raise _too_long("replace()", size)


def _limited_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def limited(*args: Any, **kwargs: Any) -> Any:
        _budget().tick()
        values = [a for a in args if not isinstance(a, Context | EvalContext | Environment)]
        _check_args([*values[1:], *kwargs.values()], f"filter {name!r}")
        if name == "format" and values:
            _check_args([str(values[0])], f"filter {name!r}")
        if name == "replace" and len(values) >= 3:
            _check_replace(str(values[0]), tuple(values[1:3]))
        if name == "join" and values:
            items = [str(v) for v in guard_iter(values[0])]
            separator = str(values[1]) if len(values) > 1 else str(kwargs.get("d", ""))
            size = sum(len(i) for i in items) + len(separator) * max(len(items) - 1, 0)
            if size > MAX_OUTPUT_CHARS:
                raise _too_long(f"filter {name!r}", size)
            args = (*args[: len(args) - len(values)], items, *values[1:])
        return _check_size(func(*args, **kwargs), f"filter {name!r}")

    return limited


@lru_cache(maxsize=128)
def _compiled(env: SandboxedEnvironment, source: str) -> Template:
    """Compiling is most of a render's cost; a draft re-renders the same template often."""
    return env.from_string(source)


def render_limited(
    env: SandboxedEnvironment,
    source: str,
    context: Mapping[str, Any],
    *,
    seconds: float = MAX_SECONDS,
    max_output: int = MAX_OUTPUT_CHARS,
) -> str:
    """Render ``source`` in ``env`` within ``seconds`` and ``max_output`` characters."""
    budget = Budget(deadline=time.monotonic() + seconds, seconds=seconds, max_output=max_output)
    token = _BUDGET.set(budget)
    try:
        template = _compiled(env, source)
        chunks: list[str] = []
        for chunk in template.generate(dict(context)):
            budget.output += len(chunk)
            if budget.output > max_output:
                raise RenderLimitExceeded(f"the text grew over {max_output} characters")
            if time.monotonic() > budget.deadline:
                raise RenderLimitExceeded(f"rendering took longer than {seconds:g} s")
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        _BUDGET.reset(token)
