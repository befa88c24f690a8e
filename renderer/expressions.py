"""The expression language of layer properties and HTML templates (SPEC 3.2).

Jinja2 syntax evaluated in Jinja2's immutable sandbox, with four differences users rely on:

* a filter applies to everything on its left inside the braces, so ``{{ price * 0.9 | currency }}``
  formats the product, not ``0.9``;
* a property that is exactly one ``{{ expr }}`` keeps the expression's type (a number stays a
  number, a bool a bool); anything else is text;
* a missing variable renders as empty text and is listed in :attr:`Scope.missing`; a blank value
  (``None``) renders as empty text too;
* every evaluation is bounded: loop iterations and calls, output length, number size and
  wall-clock time, so no template can hang or exhaust a worker.

Compilation is cached by source text because many layers share sources and a batch renders the
same template thousands of times; :meth:`Expression.evaluate` is the hot path.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import time
import unicodedata
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from copy import copy
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from decimal import Context as DecimalContext
from types import GeneratorType
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import (
    NumberPattern,
    format_currency,
    format_decimal,
    get_currency_precision,
    is_currency,
)
from jinja2 import (
    BaseLoader,
    Template,
    TemplateAssertionError,
    TemplateRuntimeError,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    nodes,
    pass_context,
    pass_environment,
    pass_eval_context,
)
from jinja2 import filters as jinja_filters
from jinja2.defaults import DEFAULT_FILTERS
from jinja2.runtime import Context, LoopContext, Macro, markup_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment, SecurityError
from jinja2.utils import missing as jinja_missing
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from renderer.errors import ExpressionError, LimitError, RendererError

__all__ = [
    "VARIABLE_TYPES",
    "Expression",
    "Scope",
    "coerce",
    "compile_expression",
    "environment",
    "render_text",
]

VARIABLE_TYPES = ("text", "number", "bool", "date", "image", "color")

MAX_OUTPUT = 100_000  # characters (or items) in any result or intermediate value
MAX_DOCUMENT = 1_000_000  # characters of a whole HTML template's output
MAX_RANGE = 10_000  # items one range() may produce
MAX_STEPS = 100_000  # loop iterations plus calls per evaluation, across all loops
MAX_MACRO_CALLS = 10_000  # macro and recursive-loop calls, each costing microseconds
MAX_WORK = 1_000_000  # characters written per evaluation, macro and {% set %} bodies included
MAX_DIGITS = 4_000  # Python refuses to print integers beyond 4,300 digits
MAX_DECIMALS = 20
TIME_BUDGET = 1.0  # seconds of wall-clock time per evaluation

_MAX_BITS = int(MAX_DIGITS * math.log2(10))
_RESULT = "pm_result"
_CONTAINERS = (dict, list, tuple)
_SIZED = (str, bytes, list, tuple, dict)
_DATE_FORMATS = ("short", "medium", "long", "full")
_SERIAL_EPOCH = dt.datetime(1899, 12, 30)  # day 0 of Excel and Google Sheets serial dates
_MAX_SERIAL = 2_958_466  # 9999-12-31 + 1
_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off", ""})
# wide enough for any printable integer, so rounding never loses digits
_DECIMALS = DecimalContext(prec=MAX_DIGITS + 40)

# the scope of the evaluation running in this thread or task, for recording missing names
_SCOPE: ContextVar[Scope | None] = ContextVar("pixelmerge_expression_scope", default=None)


# --------------------------------------------------------------------------- public API


class Scope:
    """The variables of one render, and the names it looked up but did not find.

    ``missing`` holds dotted paths (``title``, ``product.price``, ``items[2].name``); a name is
    recorded when its value is used (printed, compared, iterated, tested with ``{% if %}``), not
    when ``default()`` or ``is defined`` handles its absence.
    """

    def __init__(self, variables: Mapping[str, Any]):
        self.variables = variables
        self.missing: set[str] = set()
        # id of a container reachable from the variables -> its dotted path, for naming misses
        self._paths: dict[int, str] = {}
        self._vars = {**environment().globals, **variables}
        for name, value in variables.items():
            if type(value) in _CONTAINERS:
                self._paths[id(value)] = str(name)

    def child(self, extra: Mapping[str, Any]) -> Scope:
        """A scope with ``extra`` layered on top that records into the same ``missing`` set."""
        scope = Scope({**self.variables, **extra})
        scope.missing = self.missing
        return scope

    def _adopt(self, parent: Any, key: Any, value: Any) -> None:
        path = self._paths.get(id(parent))
        if path is not None:
            self._paths[id(value)] = path + _step_name(key)

    def _path_of(self, parent: Any, key: Any) -> str:
        path = None if parent is jinja_missing else self._paths.get(id(parent))
        return str(key) if path is None else path + _step_name(key)


class Expression:
    """A compiled property value. Cheap to evaluate many times with different scopes."""

    __slots__ = ("source", "path", "static", "_compiled")

    def __init__(self, source: str, path: str, compiled: _Compiled | None):
        self.source = source
        self.path = path
        self.static = compiled is None
        self._compiled = compiled

    def __repr__(self) -> str:
        return f"Expression({self.source!r}, path={self.path!r})"

    def evaluate(self, scope: Scope) -> Any:
        """The value: native for a lone ``{{ expr }}``, text otherwise.

        Every failure comes out as :class:`ExpressionError` or :class:`LimitError` carrying
        this expression's path; no raw Python exception escapes.
        """
        if self._compiled is None:
            return self.source
        token = _SCOPE.set(scope)
        try:
            return self._compiled.run(scope)
        except RendererError as exc:
            raise _at_path(exc, self.path) from exc
        except Exception as exc:  # a template must never crash the worker with a raw error
            raise _translate(exc, self.path) from exc
        finally:
            _SCOPE.reset(token)


def compile_expression(source: str, *, path: str, html: bool = False) -> Expression:
    """Parse ``source`` once (cached by text) and return an :class:`Expression`.

    ``html=True`` is for HTML templates: the same language and sandbox with autoescaping (values
    are escaped after filters ran on the raw text) and room for a whole document.

    Raises :class:`ExpressionError` with ``path`` for syntax errors, unknown filters and
    constructs the sandbox refuses (code ``sandbox_violation``).
    """
    if not isinstance(source, str):
        raise ExpressionError(f"expected text, got {type(source).__name__}", path=path)
    if "{{" not in source and "{%" not in source:
        return Expression(source, path, None)
    try:
        return Expression(source, path, _compile(source, html))
    except TemplateSyntaxError as exc:
        raise ExpressionError(_syntax_message(source, exc), path=path) from None
    except SecurityError as exc:
        raise ExpressionError(str(exc), path=path, code="sandbox_violation") from None


def render_text(source: str, variables: Mapping[str, Any], *, path: str = "expression") -> str:
    """Evaluate ``source`` against ``variables`` and return text (blank values become "")."""
    value = compile_expression(source, path=path).evaluate(Scope(variables))
    if isinstance(value, str):
        return value
    return "" if value is None else str(value)


@functools.cache
def environment() -> SandboxedEnvironment:
    """The shared, configured sandbox: filters, bounds, no includes, autoescape off.

    HTML templates reuse it (with their own escaping) so both kinds of template speak exactly
    the same language under the same limits.
    """
    env = _Sandbox(
        autoescape=False,
        undefined=_Missing,
        loader=_NoIncludes(),
        optimized=False,  # constant folding would run filters and operators at compile time
        keep_trailing_newline=True,  # the same text a static property keeps
        auto_reload=False,
    )
    env.globals.clear()
    env.globals["range"] = _range
    public = {name: DEFAULT_FILTERS[name] for name in _SAFE_JINJA_FILTERS} | _FILTERS
    env.filters = {name: _bounded(func) for name, func in public.items()} | _GUARDS
    return env


@functools.cache
def html_environment() -> SandboxedEnvironment:
    """The same sandbox with autoescaping, for HTML templates."""
    return environment().overlay(autoescape=True)


def coerce(value: Any, type_: str, *, name: str) -> Any:
    """Convert a spreadsheet or JSON value to a variable's declared type.

    number: ``"49"`` -> 49, ``"1,234.5"`` -> 1234.5, ``""`` -> None; bool: true/yes/1/on and
    false/no/0/off/"" in any case; date: ISO dates and datetimes, and spreadsheet serial numbers
    (days since 1899-12-30) -> ``date``/``datetime``; text, image, color: ``str`` (None -> "";
    lists and objects from JSON sources stay structured so nested lookups work). Values already
    of the right type pass through.
    """
    convert = _COERCERS.get(type_)
    if convert is None:
        expected = ", ".join(VARIABLE_TYPES)
        raise ExpressionError(
            f"unknown variable type {type_!r}; expected one of {expected}",
            path=f"variables.{name}",
        )
    try:
        return convert(value)
    except (TypeError, ValueError, OverflowError):
        raise ExpressionError(
            f"{_brief(value)} is not a {type_}", path=f"variables.{name}"
        ) from None


# --------------------------------------------------------------------------- coercion


def _parse_number(text: str) -> int | float | None:
    text = text.strip()
    if not text:
        return None
    text = _without_currency(text)
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    elif not _NUMBER.fullmatch(text):
        raise ValueError(text)
    if "." not in text and "e" not in text.lower():
        return int(text)
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def _without_currency(text: str) -> str:
    """A spreadsheet shows prices formatted ("$9.50", "-€1,200", "12 €"): one currency
    symbol before or after the number is not part of it."""
    sign, body = ("", text) if text[:1] not in "+-" else (text[0], text[1:].lstrip())
    if body[:1] and unicodedata.category(body[0]) == "Sc":
        return sign + body[1:].lstrip()
    if body[-1:] and unicodedata.category(body[-1]) == "Sc":
        return sign + body[:-1].rstrip()
    return text


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


def _to_number(value: Any) -> int | float | Decimal | None:
    if isinstance(value, bool):
        raise TypeError(value)
    if value is None or isinstance(value, (int, float, Decimal)):
        return value
    if isinstance(value, str):
        return _parse_number(value)
    raise TypeError(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    raise ValueError(value)


def _to_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return _parse_date_text(value)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return _from_serial(value)
    raise TypeError(value)


def _parse_date_text(text: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    if _NUMBER.fullmatch(text):
        return _from_serial(float(text))
    if len(text) == 10:
        return dt.date.fromisoformat(text)
    return dt.datetime.fromisoformat(text)


def _from_serial(serial: float | int | Decimal) -> dt.date:
    if not 1 <= serial < _MAX_SERIAL:
        raise ValueError(serial)
    if serial == int(serial):
        return (_SERIAL_EPOCH + dt.timedelta(days=int(serial))).date()
    # spreadsheets store times as fractions of a day; whole seconds avoid float noise
    return _SERIAL_EPOCH + dt.timedelta(seconds=round(float(serial) * 86_400))


def _to_text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (str, dict, list)):
        return value
    return str(value)


_COERCERS: dict[str, Callable[[Any], Any]] = {
    "text": _to_text,
    "number": _to_number,
    "bool": _to_bool,
    "date": _to_date,
    "image": _to_text,
    "color": _to_text,
}


# --------------------------------------------------------------------------- bounds


class _Budget:
    """What one evaluation may still spend; lives on the Jinja context so every hook finds it."""

    __slots__ = ("steps", "macro_calls", "chars", "deadline")

    def __init__(self) -> None:
        self.steps = MAX_STEPS
        self.macro_calls = MAX_MACRO_CALLS
        self.chars = MAX_WORK
        self.deadline = time.perf_counter() + TIME_BUDGET

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise LimitError(f"more than {MAX_STEPS:,} loop iterations and calls")
        self._check_time()

    def macro_call(self) -> None:
        # recursion is where a short template hides exponential work, so it gets less room
        self.macro_calls -= 1
        if self.macro_calls < 0:
            raise LimitError(f"more than {MAX_MACRO_CALLS:,} macro calls")
        self.step()

    def write(self, count: int) -> None:
        self.chars -= count
        if self.chars < 0:
            raise LimitError(f"writes more than {MAX_WORK:,} characters")
        self._check_time()

    def _check_time(self) -> None:
        if time.perf_counter() > self.deadline:
            raise LimitError(f"took longer than {TIME_BUDGET:g} s")


def _budget(context: Context) -> _Budget:
    try:
        return context.pm_budget  # type: ignore[attr-defined]
    except AttributeError:  # a render started outside Expression.evaluate (HTML templates)
        context.pm_budget = budget = _Budget()  # type: ignore[attr-defined]
        return budget


def _check_length(length: int, limit: int = MAX_OUTPUT) -> None:
    if length > limit:
        raise LimitError(f"result longer than {limit:,} characters")


def _check_size(value: Any) -> Any:
    if isinstance(value, _SIZED) and len(value) > MAX_OUTPUT:
        raise LimitError(f"result longer than {MAX_OUTPUT:,} characters")
    return value


def _check_bits(bits: float) -> None:
    if bits > _MAX_BITS:
        raise LimitError(f"number longer than {MAX_DIGITS:,} digits")


def _range(*args: int) -> range:
    numbers = range(*args)
    try:
        _check_range(len(numbers))
    except OverflowError:
        _check_range(MAX_RANGE + 1)
    return numbers


def _check_range(length: int) -> None:
    if length > MAX_RANGE:
        raise LimitError(f"range() is limited to {MAX_RANGE:,} items")


def _guarded(iterable: Iterable[Any], budget: _Budget) -> Iterator[Any]:
    scope = _SCOPE.get()
    parent = None if scope is None else scope._paths.get(id(iterable))
    for index, item in enumerate(iterable):
        budget.step()
        if parent is not None and type(item) in _CONTAINERS:
            scope._paths[id(item)] = f"{parent}[{index}]"  # type: ignore[union-attr]
        yield item


@pass_context
def _guard_loop(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    return _guarded(iterable, _budget(context))


@pass_context
def _guard_output(context: Context, value: Any) -> Any:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    _budget(context).write(len(text))
    return text


@pass_eval_context
def _guard_concat(eval_ctx: Any, values: list[Any]) -> str:
    values = ["" if value is None else value for value in values]
    parts = [value if isinstance(value, str) else str(value) for value in values]
    _check_length(sum(map(len, parts)))
    return markup_join(values) if eval_ctx.autoescape else "".join(parts)


# names no template can type (a filter name is an identifier), so users cannot shadow them
_GUARDS = {"pm:loop": _guard_loop, "pm:out": _guard_output, "pm:concat": _guard_concat}


def _bounded(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps jinja_pass_arg, so pass_context filters still get it
    def bounded(*args: Any, **kwargs: Any) -> Any:
        return _check_size(func(*args, **kwargs))

    return bounded


# sizes of str methods that can grow their input, predicted before anything is allocated


def _pad_size(text: str, args: tuple, kwargs: dict) -> int:
    width = args[0] if args else kwargs.get("width", 0)
    return max(len(text), width if type(width) is int else 0)


def _tabs_size(text: str, args: tuple, kwargs: dict) -> int:
    size = args[0] if args else kwargs.get("tabsize", 8)
    return len(text) + text.count("\t") * (size if type(size) is int else 0)


def _replace_size(text: str, args: tuple, kwargs: dict) -> int:
    old, new = (list(args) + [None, None])[:2]
    if not (isinstance(old, str) and isinstance(new, str)):
        return len(text)
    hits = text.count(old) if old else len(text) + 1
    return len(text) + hits * max(len(new) - len(old), 0)


def _join_size(text: str, args: tuple, kwargs: dict) -> int:
    items = args[0] if args else ()
    lengths = [len(item) for item in items if isinstance(item, str)]
    return sum(lengths) + len(text) * max(len(lengths) - 1, 0)


def _format_size(text: str, args: tuple, kwargs: dict) -> int:
    values = [*args, *kwargs.values()]
    if len(args) == 1 and isinstance(args[0], Mapping) and not kwargs:  # format_map
        values = list(args[0].values())
    fields = _BRACE_FIELD.findall(text)
    nested = _NESTED_SPEC.search(text) is not None
    return _estimate(text, fields, values, nested)


def _percent_size(text: str, right: Any) -> int:
    if isinstance(right, tuple):
        values = list(right)
    elif isinstance(right, Mapping):
        values = list(right.values())
    else:
        values = [right]
    fields = ["".join(spec) for spec in _PERCENT_FIELD.findall(text)]
    return _estimate(text, fields, values, nested=any("*" in field for field in fields))


def _estimate(text: str, fields: list[str], values: list[Any], nested: bool) -> int:
    widths = [int(run) for field in fields for run in re.findall(r"\d+", field)]
    longest = [len(value if isinstance(value, str) else str(value)) for value in values]
    if nested:  # a width taken from the arguments: trust no integer argument
        longest += [abs(value) for value in values if type(value) is int]
    return len(text) + len(fields) * max(widths + longest + [0])


_BRACE_FIELD = re.compile(r"\{([^{}]*)")
_NESTED_SPEC = re.compile(r"\{[^{}]*:[^{}]*\{")
_PERCENT_FIELD = re.compile(r"%[#0 +\-]*(\*|\d*)(?:\.(\*|\d*))?")

_GROWING_METHODS: dict[str, Callable[[str, tuple, dict], int]] = {
    "center": _pad_size,
    "ljust": _pad_size,
    "rjust": _pad_size,
    "zfill": _pad_size,
    "expandtabs": _tabs_size,
    "replace": _replace_size,
    "join": _join_size,
    "format": _format_size,
    "format_map": _format_size,
}
# bytes methods would need their own predictions; translate maps one character to any text
_REFUSED_METHODS = frozenset({"encode", "translate", "maketrans"})


def _prepare_call(obj: Any, args: tuple, kwargs: dict) -> tuple:
    """Refuse str method calls that could allocate too much; return the arguments to call with."""
    target = getattr(obj, "__wrapped__", obj)  # the sandbox hands out str.format wrapped
    owner = getattr(target, "__self__", None)
    if not isinstance(owner, str):
        return args
    name = getattr(target, "__name__", "")
    if name in _REFUSED_METHODS:
        raise SecurityError(f"'{name}' is not available in templates")
    if name == "join" and args:
        args = (list(args[0]), *args[1:])  # a generator could be measured or joined, not both
    predict = _GROWING_METHODS.get(name)
    if predict is not None:
        _check_length(predict(owner, args, kwargs))
    return args


def _check_add(left: Any, right: Any) -> None:
    if isinstance(left, _SIZED) and isinstance(right, _SIZED):
        _check_length(len(left) + len(right))


def _check_multiply(left: Any, right: Any) -> None:
    if type(left) is int and type(right) is int:
        _check_bits(left.bit_length() + right.bit_length())
        return
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, _SIZED) and type(count) is int:
            _check_length(len(sequence) * count)


def _check_power(left: Any, right: Any) -> None:
    if type(left) is int and type(right) is int and right > 0 and abs(left) > 1:
        _check_bits(right * math.log2(abs(left)))


def _check_modulo(left: Any, right: Any) -> None:
    if isinstance(left, str):
        _check_length(_percent_size(left, right))


_BINOP_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "+": _check_add,
    "*": _check_multiply,
    "**": _check_power,
    "%": _check_modulo,
}


# --------------------------------------------------------------------------- the sandbox


class _Missing(Undefined):
    """A missing variable: renders as "", records its dotted path in the scope when used."""

    __slots__ = ("_chained",)

    def __init__(self, hint=None, obj=jinja_missing, name=None, exc=UndefinedError) -> None:
        super().__init__(hint, obj, name, exc)
        self._chained = False

    def _record(self) -> None:
        scope = _SCOPE.get()
        if scope is not None and self._undefined_name is not None:
            scope.missing.add(scope._path_of(self._undefined_obj, self._undefined_name))

    def _chain(self) -> _Missing:
        # product.price.amount stays the one miss "product.price"; chained calls return it
        other = type(self)(
            self._undefined_hint,
            self._undefined_obj,
            self._undefined_name,
            self._undefined_exception,
        )
        other._chained = True
        return other

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._chain()

    def __getitem__(self, key: Any) -> Any:
        return self._chain()

    def __str__(self) -> str:
        self._record()
        return ""

    def __html__(self) -> str:
        return str(self)

    def __iter__(self) -> Iterator[Any]:
        self._record()
        return iter(())

    def __len__(self) -> int:
        self._record()
        return 0

    def __bool__(self) -> bool:
        self._record()
        return False

    def __eq__(self, other: object) -> bool:
        self._record()
        return type(self) is type(other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = Undefined.__hash__

    def _compare(self, other: object) -> bool:
        self._record()
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _compare

    def __int__(self) -> int:
        self._record()
        return 0

    def __float__(self) -> float:
        self._record()
        return 0.0

    def __neg__(self) -> _Missing:
        return self

    __pos__ = __neg__


class _NoIncludes(BaseLoader):
    def get_source(self, environment: Any, template: str) -> Any:
        raise SecurityError("templates cannot include other templates")


class _Guard(NodeTransformer):
    """Rewrites a parsed template so every loop, output and ``~`` passes through a bound."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.iter = _wrap(node.iter, "pm:loop")
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        node = self.generic_visit(node)
        node.nodes = [_wrap(child, "pm:out") for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        return _wrap(nodes.List(node.nodes, lineno=node.lineno), "pm:concat")

    def visit_Name(self, node: nodes.Name) -> nodes.Node:
        if node.name == "self":  # a TemplateReference: the way into blocks and internals
            raise SecurityError("'self' is not available in templates")
        return node

    def refuse_include(self, node: nodes.Node) -> nodes.Node:
        raise SecurityError("templates cannot include other templates")

    visit_Include = visit_Import = visit_FromImport = visit_Extends = refuse_include


def _wrap(node: nodes.Expr, filter_name: str) -> nodes.Filter:
    return nodes.Filter(node, filter_name, [], [], None, None, lineno=node.lineno)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox (user data cannot be changed between layers) plus bounds."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def _generate(self, source: Any, name: Any, filename: Any, defer_init: bool = False) -> str:
        _check_names(self, source)
        tree = _Guard().visit(source)
        tree.set_environment(self)
        return super()._generate(tree, name, filename, defer_init=defer_init)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _refuse_dunder(attribute)
        return _track(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        _refuse_dunder(argument)
        return _track(obj, argument, super().getitem(obj, argument))

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # Jinja returns an Undefined that fails when printed; ours would print "", so refuse now
        raise SecurityError(f"access to {attribute!r} of {type(obj).__name__} is not allowed")

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = _budget(context)
        if isinstance(obj, Undefined):
            return _call_missing(obj)
        if isinstance(obj, (Macro, LoopContext)):
            budget.macro_call()
        else:
            budget.step()
        if isinstance(obj, LoopContext) and args:  # a recursive loop iterates its argument
            args = (_guarded(args[0], budget), *args[1:])
        args = _prepare_call(obj, args, kwargs)
        return _check_size(super().call(context, obj, *args, **kwargs))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if isinstance(left, Undefined):
            return left
        if isinstance(right, Undefined):
            return right
        check = _BINOP_CHECKS.get(operator)
        if check is not None:
            check(left, right)
        try:
            return self.binop_table[operator](left, right)
        except (TypeError, ValueError):
            raise ExpressionError(_binop_problem(operator, left, right)) from None


def _check_names(env: SandboxedEnvironment, tree: nodes.Template) -> None:
    """Unknown filters and tests fail when the template is saved, even inside a branch that
    Jinja would only check once it runs."""
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        kind, known = (
            ("filter", env.filters) if isinstance(node, nodes.Filter) else ("test", env.tests)
        )
        if node.name not in known:
            raise TemplateAssertionError(f"No {kind} named {node.name!r}.", node.lineno)


def _refuse_dunder(name: Any) -> None:
    if isinstance(name, str) and name.startswith("__"):
        raise SecurityError(f"access to {name!r} is not allowed")


def _track(obj: Any, key: Any, value: Any) -> Any:
    if type(value) in _CONTAINERS:
        scope = _SCOPE.get()
        if scope is not None:
            scope._adopt(obj, key, value)
    return value


def _call_missing(value: Undefined) -> Any:
    if getattr(value, "_chained", False):
        return value  # title.upper() on a missing title is just missing
    scope = _SCOPE.get()
    name = value._undefined_name
    if scope is not None:
        name = scope._path_of(value._undefined_obj, name)
    raise ExpressionError(f"unknown function '{name}'")


def _step_name(key: Any) -> str:
    return f"[{key}]" if isinstance(key, int) else f".{key}"


# --------------------------------------------------------------------------- filters


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _blank(value: Any) -> Any:
    """What a formatting filter returns for a blank value: a miss stays a (recorded) miss."""
    return value if isinstance(value, Undefined) else ""


def _is_blank(value: Any) -> bool:
    return value is None or isinstance(value, Undefined) or (isinstance(value, str) and not value)


def _number(value: Any, where: str) -> int | float | Decimal | None:
    if isinstance(value, Undefined):
        return None
    try:
        number = _to_number(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(number, (float, Decimal)) and not Decimal(number).is_finite():
        raise ExpressionError(f"{where}: {_brief(value)} is not a number")
    return number


def _whole(value: Any, where: str, low: int, high: int) -> int:
    number = _number(value, where)
    if number is None or not low <= number <= high or number != int(number):
        raise ExpressionError(
            f"{where}: {_brief(value)} is not a whole number from {low} to {high}"
        )
    return int(number)


def _half_up(number: int | float | Decimal, places: int) -> Decimal:
    """Round the way people do (2.5 -> 3, 2.675 -> 2.68), not banker's rounding on binary floats."""
    exact = Decimal(repr(number)) if isinstance(number, float) else Decimal(number)
    try:
        return exact.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP, context=_DECIMALS)
    except InvalidOperation:
        raise LimitError(f"number longer than {MAX_DIGITS:,} digits") from None


@functools.lru_cache(maxsize=256)
def _parse_locale(name: str) -> Locale:
    return Locale.parse(name)


def _locale(name: Any, where: str) -> Locale:
    try:
        return _parse_locale(str(name))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ExpressionError(f"{where}: unknown locale {name!r}") from None


def _with_places(pattern: NumberPattern, places: int) -> NumberPattern:
    fixed = copy(pattern)
    fixed.frac_prec = (places, places)
    return fixed


def _upper(value: Any) -> str:
    return _text(value).upper()


def _lower(value: Any) -> str:
    return _text(value).lower()


def _capitalize(value: Any) -> str:
    return _text(value).capitalize()


def _title(value: Any) -> str:
    return jinja_filters.do_title(_text(value))


def _trim(value: Any, chars: str | None = None) -> str:
    return _text(value).strip(chars)


def _truncate(value: Any, length: Any = 255) -> str:
    """At most ``length`` characters; a cut text ends in "…" (which counts toward the length)."""
    text = _text(value)
    limit = _whole(length, "truncate", 0, MAX_OUTPUT)
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…" if limit else ""


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """``default_value`` when ``value`` is missing, None or "" (a blank spreadsheet cell counts as
    blank, unlike Jinja's own ``default``); with ``boolean=True`` also when it is falsy."""
    if _is_blank(value) or (boolean and not value):
        return default_value
    return value


def _round(value: Any, precision: Any = 0) -> Any:
    """Half-up rounding; ``precision`` 0 (or negative) gives an int, otherwise a float."""
    number = _number(value, "round")
    if number is None:
        return _blank(value)
    places = _whole(precision, "round", -MAX_DECIMALS, MAX_DECIMALS)
    rounded = _half_up(number, places)
    return int(rounded) if places <= 0 else float(rounded)


def _format_number(value: Any, decimals: Any = None, locale: Any = "en_US") -> Any:
    """Locale digits and grouping; exactly ``decimals`` fraction digits (half-up) when given."""
    number = _number(value, "number")
    if number is None:
        return _blank(value)
    where = _locale(locale, "number")
    if decimals is None:
        return format_decimal(number, locale=where)
    places = _whole(decimals, "number", 0, MAX_DECIMALS)
    return _with_places(where.decimal_formats[None], places).apply(_half_up(number, places), where)


def _percent(value: Any, decimals: Any = 0, locale: Any = "en_US") -> Any:
    """A ratio as a percentage: 0.256 -> "26%"."""
    number = _number(value, "percent")
    if number is None:
        return _blank(value)
    where = _locale(locale, "percent")
    places = _whole(decimals, "percent", 0, MAX_DECIMALS)
    pattern = _with_places(where.percent_formats[None], places)
    return pattern.apply(_half_up(number, places + 2), where)


def _currency(value: Any, code: Any = "USD", locale: Any = "en_US") -> Any:
    """Money in the locale's style with the currency's own fraction digits (half-up)."""
    number = _number(value, "currency")
    if number is None:
        return _blank(value)
    where = _locale(locale, "currency")
    code = str(code).upper()
    if not is_currency(code):
        raise ExpressionError(f"currency: unknown currency code {code!r}")
    rounded = _half_up(number, get_currency_precision(code))
    return format_currency(rounded, code, locale=where)


def _format_when(value: Any, format: Any = "medium", tz: Any = None, locale: Any = "en_US") -> Any:
    """Dates, datetimes, ISO text and spreadsheet serials, as a Babel format name (short, medium,
    long, full) or a CLDR pattern ("d MMM yyyy"). ``tz`` converts datetimes (naive ones are UTC);
    a calendar date has no time zone and is shown as is."""
    when = _when(value)
    if when is None:
        return _blank(value)
    where = _locale(locale, "date")
    zone = None if tz is None else _zone(tz)
    if isinstance(when, dt.datetime):
        if zone is not None:
            when = when.replace(tzinfo=when.tzinfo or dt.UTC).astimezone(zone)
        return _babel_date(format_datetime, when, format, where)
    if format in _DATE_FORMATS:
        return _babel_date(format_date, when, format, where)
    return _babel_date(format_datetime, dt.datetime.combine(when, dt.time()), format, where)


def _when(value: Any) -> dt.date | None:
    if _is_blank(value):
        return None
    try:
        return _to_date(value)
    except (TypeError, ValueError, OverflowError):
        raise ExpressionError(f"date: {_brief(value)} is not a date") from None


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def _zone(name: Any) -> zoneinfo.ZoneInfo:
    # only names from the tz database, so a template cannot point ZoneInfo at a file
    if not isinstance(name, str) or name not in _zone_names():
        raise ExpressionError(f"date: unknown time zone {name!r}")
    return zoneinfo.ZoneInfo(name)


def _babel_date(formatter: Callable[..., str], when: Any, format: Any, where: Locale) -> str:
    try:
        return formatter(when, format=str(format), locale=where)
    except (ValueError, KeyError, AttributeError, TypeError):
        raise ExpressionError(f"date: {format!r} is not a date format") from None


@pass_environment
def _join(env: Any, value: Any, sep: Any = ", ", attribute: Any = None) -> str:
    """Items joined by ``sep``; a single text is returned whole rather than split into letters."""
    if isinstance(value, str) or value is None:
        return _text(value)
    try:
        items = list(value)
    except TypeError:
        raise ExpressionError(f"join: {_brief(value)} is not a list") from None
    if attribute is not None:
        items = list(map(jinja_filters.make_attrgetter(env, attribute), items))
    parts, glue = [_text(item) for item in items], _text(sep)
    _check_length(sum(map(len, parts)) + len(glue) * max(len(parts) - 1, 0))
    return glue.join(parts)


def _replace(value: Any, old: Any, new: Any, count: Any = None) -> str:
    text, old, new = _text(value), _text(old), _text(new)
    limit = -1 if count is None else _whole(count, "replace", 0, MAX_OUTPUT)
    _check_length(_replace_size(text, (old, new), {}))
    return text.replace(old, new, limit)


@pass_eval_context
def _tojson(eval_ctx: Any, value: Any) -> Any:
    # without Jinja's indent argument, which would let a template ask for a billion spaces
    return jinja_filters.do_tojson(eval_ctx, value)


_FILTERS: dict[str, Callable[..., Any]] = {
    "upper": _upper,
    "lower": _lower,
    "capitalize": _capitalize,
    "title": _title,
    "trim": _trim,
    "truncate": _truncate,
    "default": _default,
    "d": _default,
    "round": _round,
    "number": _format_number,
    "percent": _percent,
    "currency": _currency,
    "date": _format_when,
    "join": _join,
    "replace": _replace,
    "tojson": _tojson,
}

# Jinja's own filters whose output stays near the size of their input; center, indent, batch,
# slice, wordwrap, format and pprint take sizes from the template, random breaks determinism
_SAFE_JINJA_FILTERS = (
    "abs", "attr", "count", "dictsort", "e", "escape", "filesizeformat", "first", "float",
    "forceescape", "groupby", "int", "items", "last", "length", "list", "map", "max", "min",
    "reject", "rejectattr", "reverse", "safe", "select", "selectattr", "sort", "string",
    "striptags", "sum", "unique", "urlencode", "urlize", "wordcount", "xmlattr",
)  # fmt: skip


# --------------------------------------------------------------------------- compilation


class _Compiled:
    """The Jinja templates for one source: a text template, or a native one for ``{{ expr }}``."""

    __slots__ = ("template", "native", "limit")

    def __init__(self, template: Template, native: bool, limit: int = MAX_OUTPUT):
        self.template = template
        self.native = native
        self.limit = limit

    def run(self, scope: Scope) -> Any:
        context = self.template.new_context(scope._vars, shared=True)
        context.pm_budget = _Budget()  # type: ignore[attr-defined]
        if self.native:
            for _ in self.template.root_render_func(context):
                pass
            return _native(context.vars[_RESULT])
        text = "".join(self.template.root_render_func(context))
        _check_length(len(text), self.limit)
        return text


def _native(value: Any) -> Any:
    if isinstance(value, Undefined):
        return str(value)
    if isinstance(value, (GeneratorType, range)):
        value = list(value)
    if isinstance(value, (list, tuple)):
        value = type(value)(str(item) if isinstance(item, Undefined) else item for item in value)
    if isinstance(value, Markup):
        value = str(value)
    return _check_size(value)


@functools.lru_cache(maxsize=4096)
def _compile(source: str, html: bool = False) -> _Compiled:
    env = html_environment() if html else environment()
    rewritten = _apply_filter_rule(source)
    template = env.from_string(rewritten)  # also what reports syntax errors
    body = None if html else _single_body(rewritten)
    if body is None:
        return _Compiled(template, native=False, limit=MAX_DOCUMENT if html else MAX_OUTPUT)
    return _Compiled(env.from_string(f"{{% set {_RESULT} = {body} %}}"), native=True)


def _syntax_message(source: str, exc: TemplateSyntaxError) -> str:
    problem, hint = exc, ""
    try:
        environment().from_string(source)
        # only the rewritten source fails: a filter sits in the middle of an expression
        hint = (
            " (a filter applies to everything on its left inside {{ }}; "
            "put parentheses around a filter used inside a larger expression)"
        )
    except TemplateSyntaxError as original:
        problem = original
    except SecurityError:
        pass
    where = f" on line {problem.lineno}" if "\n" in source.strip() else ""
    return _friendly(problem.message or str(problem), where) + hint


def _friendly(message: str, where: str = "") -> str:
    unknown = _UNKNOWN_NAME.search(message)
    if unknown:
        return f"unknown {unknown.group(1)} '{unknown.group(2)}'{where}"
    return f"syntax error{where}: {message}"


_UNKNOWN_NAME = re.compile(r"No (filter|test) named '([^']*)'")


def _at_path(exc: RendererError, path: str) -> RendererError:
    if exc.path == path:
        return exc
    return type(exc)(exc.message, path=path, code=exc.code)


def _translate(exc: Exception, path: str) -> RendererError:
    if isinstance(exc, SecurityError):
        return ExpressionError(str(exc), path=path, code="sandbox_violation")
    if isinstance(exc, (RecursionError, MemoryError)):
        return LimitError("too deeply nested or too large", path=path)
    if isinstance(exc, OverflowError):
        return LimitError("number too large", path=path)
    if isinstance(exc, ZeroDivisionError):
        return ExpressionError("division by zero", path=path)
    if isinstance(exc, TemplateRuntimeError) and _UNKNOWN_NAME.search(str(exc)):
        return ExpressionError(_friendly(str(exc)), path=path)
    return ExpressionError(str(exc) or type(exc).__name__, path=path)


def _binop_problem(operator: str, left: Any, right: Any) -> str:
    problem = (
        f"cannot compute {_brief(left)} {operator} {_brief(right)} "
        f"({_kind(left)} {operator} {_kind(right)})"
    )
    if any(isinstance(side, str) and _NUMBER.fullmatch(side.strip()) for side in (left, right)):
        # the usual cause: a spreadsheet number arriving as text into an untyped variable
        problem += "; declare the variable's type as number to compute with it"
    return problem


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "blank"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, dt.date):
        return "date"
    return {dict: "object", list: "list", tuple: "list"}.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- the filter rule
#
# Jinja binds a filter to the nearest operand (``price * 0.9 | currency`` formats 0.9). Users
# expect it to apply to everything on its left, so each ``{{ }}`` body is rewritten before
# parsing: split at top-level pipes, parenthesise the left side. Tags, comments and raw blocks
# are copied untouched.

_OPENER = re.compile(r"\{\{|\{%|\{#")
_RAW_START = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_RAW_END = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_SINGLE = re.compile(r"\s*\{\{(.*)\}\}\s*", re.S)


def _apply_filter_rule(source: str) -> str:
    out, pos = [], 0
    while (match := _OPENER.search(source, pos)) is not None:
        out.append(source[pos : match.start()])
        end = _construct_end(source, match)
        chunk = source[match.start() : end]
        if match.group() == "{{" and chunk.endswith("}}"):
            chunk = "{{" + _rewrite_print(chunk[2:-2]) + "}}"
        out.append(chunk)
        pos = end
    out.append(source[pos:])
    return "".join(out)


def _construct_end(source: str, match: re.Match[str]) -> int:
    """Where the comment, raw block, tag or print starting at ``match`` ends."""
    if match.group() == "{#":
        close = source.find("#}", match.end())
        return len(source) if close < 0 else close + 2
    raw = _RAW_START.match(source, match.start())
    if raw is not None:
        close = _RAW_END.search(source, raw.end())
        return len(source) if close is None else close.end()
    close = _scan(source, match.end(), "}}" if match.group() == "{{" else "%}")
    return len(source) if close < 0 else close + 2


def _scan(text: str, pos: int, closer: str) -> int:
    """Index of ``closer`` outside strings and brackets, from ``pos``; -1 when absent."""
    depth = 0
    while pos < len(text):
        char = text[pos]
        if char in "'\"":
            pos = _string_end(text, pos)
            continue
        if depth == 0 and text.startswith(closer, pos):
            return pos
        if char in "([{":
            depth += 1
        elif char in ")]}" and depth:
            depth -= 1
        pos += 1
    return -1


def _string_end(text: str, start: int) -> int:
    pos = start + 1
    while pos < len(text):
        if text[pos] == "\\":
            pos += 2
        elif text[pos] == text[start]:
            return pos + 1
        else:
            pos += 1
    return len(text)


def _split_markers(body: str) -> tuple[str, str, str]:
    """``{{- x -}}`` whitespace-control signs, kept outside the rewritten expression."""
    head = body[0] if body[:1] in ("-", "+") else ""
    tail = "-" if len(body) > len(head) and body.endswith("-") else ""
    return head, body[len(head) : len(body) - len(tail)], tail


def _rewrite_print(body: str) -> str:
    head, core, tail = _split_markers(body)
    parts, start = [], 0
    while (pipe := _scan(core, start, "|")) >= 0:
        parts.append(core[start:pipe])
        start = pipe + 1
    if not parts:
        return body
    expression = parts[0].strip()
    for part in [*parts[1:], core[start:]]:
        expression = f"({expression}) | {part.strip()}"
    return f"{head} {expression} {tail}"


def _single_body(source: str) -> str | None:
    """The expression of a source that is exactly one ``{{ expr }}``, else None."""
    match = _SINGLE.fullmatch(source)
    if match is None or _scan(source, match.start(1), "}}") != match.end(1):
        return None
    return _split_markers(match.group(1))[1]
