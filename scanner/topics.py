"""The topic query language and its matcher.

A topic is a small boolean query, written by press officers in the TOML file or in chat::

    ("vắc-xin" OR vaccine) AND NOT "thú y"
    sốt xuất huyết OR dengue
    (bão OR "áp thấp") (miền Trung OR "Quảng Nam")

Grammar (precedence: NOT binds tightest, then AND, then OR)::

    query   := or
    or      := and ( OR and )*
    and     := unary ( [AND] unary )*      -- adjacent terms mean AND
    unary   := NOT unary | primary
    primary := TERM | "PHRASE" | ( or )

* Operators are recognised in any case (``AND``/``and``/``And``), because officers type in chat
  and "a or b" silently meaning "a AND or AND b" would be a trap. To search the literal word,
  quote it: ``"or"``.
* A term or phrase is matched on the diacritics-insensitive folded form (:mod:`scanner.textnorm`)
  as consecutive syllables, and the boundary between two syllables may be a space, a hyphen or
  nothing: ``"vắc-xin"`` matches "vắc xin", "vac-xin" and "vacxin"; a single word ``vacxin``
  matches "vắc-xin" too. Matches are whole syllables: ``xin`` does not match "vacxin".
* A bare multi-syllable term such as ``vắc-xin`` (one word, joined by a hyphen) is a phrase;
  a bare ``sốt xuất huyết`` is three terms ANDed, which is usually what people mean anyway.
* A query that would match an empty article (e.g. ``NOT bão``) is refused: a topic must name
  something to look for.

:func:`match` returns a weight: 0 when the query does not match, otherwise the sum over the
distinct non-negated terms found of :data:`TITLE_WEIGHT` (term in the title) or
:data:`SUMMARY_WEIGHT` (summary only). Title hits count more because a headline is about its
subject, while a lead often only mentions it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import compress, count
from typing import TypeAlias

from scanner.textnorm import fold

__all__ = [
    "SUMMARY_WEIGHT",
    "TITLE_WEIGHT",
    "And",
    "MatchDoc",
    "Node",
    "Not",
    "Or",
    "Query",
    "QueryError",
    "Term",
    "TopicMatcher",
    "match",
    "parse_query",
    "positive_terms",
]

TITLE_WEIGHT = 2.0
SUMMARY_WEIGHT = 1.0
MAX_QUERY_LENGTH = 2000
MAX_DEPTH = 50

_OPERATORS = {"AND", "OR", "NOT"}


class QueryError(ValueError):
    """A query that cannot be parsed; ``position`` is the 1-based column of the problem."""

    def __init__(self, position: int, message: str) -> None:
        self.position = position
        self.reason = message
        super().__init__(f"position {position}: {message}")


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class Term:
    """A word or phrase: the folded syllables that must appear consecutively."""

    text: str
    syllables: tuple[str, ...]
    position: int = field(default=1, compare=False)
    key: str = field(default="", compare=False, repr=False)
    joined: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        # Computed once, used per article: the cache key of the term's hits, and its
        # syllables joined (how every match is spelled once spaces are dropped).
        object.__setattr__(self, "key", " ".join(self.syllables))
        object.__setattr__(self, "joined", "".join(self.syllables))


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node: TypeAlias = Term | Not | And | Or


# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # WORD, PHRASE, AND, OR, NOT, LPAREN, RPAREN, END
    text: str
    position: int  # 1-based


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            tokens.append(_Token("LPAREN", ch, i + 1))
            i += 1
        elif ch == ")":
            tokens.append(_Token("RPAREN", ch, i + 1))
            i += 1
        elif ch in '"“”':
            end = _find_closing_quote(text, i + 1)
            if end < 0:
                raise QueryError(i + 1, "unterminated quoted phrase (add a closing '\"')")
            tokens.append(_Token("PHRASE", text[i + 1 : end], i + 1))
            i = end + 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in '()"“”':
                i += 1
            word = text[start:i]
            kind = word.upper() if word.upper() in _OPERATORS else "WORD"
            tokens.append(_Token(kind, word, start + 1))
    tokens.append(_Token("END", "", n + 1))
    return tokens


def _find_closing_quote(text: str, start: int) -> int:
    for j in range(start, len(text)):
        if text[j] in '"“”':
            return j
    return -1


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "END":
            self.index += 1
        return token

    def parse(self) -> Node:
        node = self.parse_or()
        token = self.current
        if token.kind == "RPAREN":
            raise QueryError(token.position, "unbalanced ')' (no '(' to close)")
        if token.kind != "END":  # pragma: no cover - every other token starts a unary
            raise QueryError(token.position, f"unexpected {token.text!r}")
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.current.kind == "OR":
            operator = self.advance()
            children.append(self.parse_and(after=operator))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self, after: _Token | None = None) -> Node:
        children = [self.parse_unary(after)]
        while self.current.kind in ("AND", "NOT", "WORD", "PHRASE", "LPAREN"):
            operator = self.advance() if self.current.kind == "AND" else None
            children.append(self.parse_unary(operator))
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_unary(self, after: _Token | None = None) -> Node:
        token = self.current
        if token.kind == "NOT":
            self.advance()
            return Not(self.parse_unary(token))
        return self.parse_primary(after)

    def parse_primary(self, after: _Token | None) -> Node:
        token = self.current
        if token.kind == "WORD" or token.kind == "PHRASE":
            self.advance()
            syllables = tuple(fold(token.text).split())
            if not syllables:
                what = "quoted phrase" if token.kind == "PHRASE" else f"term {token.text!r}"
                raise QueryError(token.position, f"{what} has no letters or digits to match")
            return Term(token.text, syllables, token.position)
        if token.kind == "LPAREN":
            self.advance()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QueryError(token.position, f"parentheses nested deeper than {MAX_DEPTH}")
            if self.current.kind == "RPAREN":
                raise QueryError(self.current.position, "empty parentheses '()'")
            node = self.parse_or()
            if self.current.kind != "RPAREN":
                raise QueryError(
                    self.current.position,
                    f"expected ')' after {_describe(self.tokens[self.index - 1])}"
                    f" to close the '(' at position {token.position}",
                )
            self.advance()
            self.depth -= 1
            return node
        # Nothing that can start an expression: say what was expected and after what.
        if token.kind == "END":
            if after is None:
                raise QueryError(token.position, "empty query: give at least one term")
            raise QueryError(token.position, f"expected a term after {after.kind} at end of query")
        where = f"after {after.kind} " if after is not None else ""
        raise QueryError(token.position, f"expected a term {where}but found {_describe(token)}")


def _describe(token: _Token) -> str:
    if token.kind == "PHRASE":
        return f'"{token.text}"'
    if token.kind == "END":
        return "end of query"
    return repr(token.text)


# --------------------------------------------------------------------------- matching


class MatchDoc:
    """An article's title and summary, folded once and shared by every topic query.

    Term hits are cached, so N topics sharing a term pay for it once.
    """

    __slots__ = ("_cache", "joined", "summary", "summary_joined", "title", "title_joined")

    def __init__(self, title: str, summary: str = "", *, folded: bool = False) -> None:
        title_f = title if folded else fold(title)
        summary_f = summary if folded else fold(summary)
        self.title = f" {title_f} "
        self.summary = f" {summary_f} "
        self.title_joined = title_f.replace(" ", "")
        self.summary_joined = summary_f.replace(" ", "")
        # Both, apart by a character no joined term contains (folded text has no whitespace).
        self.joined = f"{self.title_joined}\n{self.summary_joined}"
        self._cache: dict[str, tuple[bool, bool]] = {}

    def hit(self, term: Term) -> tuple[bool, bool]:
        """(found in title, found in summary)."""
        key = term.key
        cached = self._cache.get(key)
        if cached is None:
            cached = (
                _found(term, self.title, self.title_joined),
                _found(term, self.summary, self.summary_joined),
            )
            self._cache[key] = cached
        return cached


def _found(term: Term, text: str, joined: str) -> bool:
    """Whether ``term`` matches whole syllables of ``text`` (space-padded, single-spaced)."""
    if term.joined not in joined:
        return False  # every match spells the term's syllables joined
    if len(term.syllables) == 1:
        word = term.joined
        # As a syllable, or written apart as 2–3 adjacent ones ("vacxin" vs "vac xin").
        return f" {word} " in text or any(split in text for split in _splits(word))
    return _phrase_regex(term.syllables).search(text) is not None


_SPLITS_CACHE: dict[str, tuple[str, ...]] = {}


def _splits(word: str) -> tuple[str, ...]:
    """``word`` written as two or three adjacent syllables, space-delimited: " va cxin ", ….

    A substring test of each against the space-padded, single-spaced text says whether
    ``word`` is the concatenation of a pair or triple of adjacent syllables — the same answer
    as looking it up in :func:`_concat_set`, without building every pair and triple.
    """
    found = _SPLITS_CACHE.get(word)
    if found is None:
        n = len(word)
        out = [f" {word[:a]} {word[a:]} " for a in range(1, n)]
        out += [
            f" {word[:a]} {word[a:b]} {word[b:]} " for a in range(1, n - 1) for b in range(a + 1, n)
        ]
        found = _SPLITS_CACHE[word] = tuple(out)
    return found


def _concat_set(text: str) -> frozenset[str]:
    tokens = text.split()
    out = set()
    for i in range(len(tokens) - 1):
        pair = tokens[i] + tokens[i + 1]
        out.add(pair)
        if i + 2 < len(tokens):
            out.add(pair + tokens[i + 2])
    return frozenset(out)


_REGEX_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}


def _phrase_regex(syl: tuple[str, ...]) -> re.Pattern[str]:
    pattern = _REGEX_CACHE.get(syl)
    if pattern is None:
        # Syllables are alphanumeric (fold() leaves nothing else), so no escaping is needed,
        # but escape anyway so a future change to fold() cannot inject regex syntax.
        pattern = re.compile(" " + " ?".join(re.escape(s) for s in syl) + " ")
        _REGEX_CACHE[syl] = pattern
    return pattern


def _evaluate(node: Node, doc: MatchDoc, weights: dict[str, float] | None) -> bool:
    """Boolean value of ``node``; records weights of positive hits in ``weights``."""
    if isinstance(node, Term):
        in_title, in_summary = doc.hit(node)
        if weights is not None and (in_title or in_summary):
            weights[node.key] = TITLE_WEIGHT if in_title else SUMMARY_WEIGHT
        return in_title or in_summary
    if isinstance(node, Not):
        return not _evaluate(node.child, doc, None)
    if isinstance(node, And):
        # Short-circuiting is fine: once a child fails the weight of the whole match is 0.
        return all(_evaluate(child, doc, weights) for child in node.children)
    result = False
    for child in node.children:
        result = _evaluate(child, doc, weights) or result
    return result


_Compiled: TypeAlias = Callable[[MatchDoc, dict[str, float]], bool]


def _compile(node: Node, record: bool) -> _Compiled:
    """:func:`_evaluate` of ``node`` as nested closures (``record``: weights are wanted).

    Same results, same order of evaluation (AND short-circuits, OR evaluates every child so
    each hit records its weight), without the per-node ``isinstance`` dispatch.
    """
    if isinstance(node, Term):
        term, key = node, node.key
        if record:

            def term_weighted(doc: MatchDoc, weights: dict[str, float]) -> bool:
                cached = doc._cache.get(key)
                if cached is None:
                    cached = doc.hit(term)
                if cached[0]:
                    weights[key] = TITLE_WEIGHT
                    return True
                if cached[1]:
                    weights[key] = SUMMARY_WEIGHT
                    return True
                return False

            return term_weighted

        def term_only(doc: MatchDoc, weights: dict[str, float]) -> bool:
            cached = doc._cache.get(key)
            if cached is None:
                cached = doc.hit(term)
            return cached[0] or cached[1]

        return term_only
    if isinstance(node, Not):
        child = _compile(node.child, False)
        return lambda doc, weights: not child(doc, weights)
    children = tuple(_compile(c, record) for c in node.children)
    if isinstance(node, And):

        def all_of(doc: MatchDoc, weights: dict[str, float]) -> bool:
            for c in children:  # noqa: SIM110 - a plain loop, no generator per call
                if not c(doc, weights):
                    return False
            return True

        return all_of

    def any_of(doc: MatchDoc, weights: dict[str, float]) -> bool:
        result = False
        for c in children:
            result = c(doc, weights) or result
        return result

    return any_of


@dataclass(frozen=True)
class Query:
    """A parsed topic query; cheap to evaluate many times."""

    text: str
    root: Node
    _evaluate: _Compiled = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_evaluate", _compile(self.root, True))

    def match(self, title: str, summary: str = "") -> float:
        """Weight of the match (0.0 = no match) on raw title/summary."""
        return self.match_doc(MatchDoc(title, summary))

    def match_doc(self, doc: MatchDoc) -> float:
        """Weight of the match on a pre-folded :class:`MatchDoc` (the scanner's hot path)."""
        weights: dict[str, float] = {}
        if not self._evaluate(doc, weights):
            return 0.0
        # A match made only of negations cannot happen (parse_query refuses such queries),
        # but keep the weight positive for any match.
        return sum(weights.values()) or SUMMARY_WEIGHT

    @property
    def terms(self) -> list[Term]:
        """Every term of the query, in order (negated ones included)."""
        out: list[Term] = []
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Term):
                out.append(node)
            elif isinstance(node, Not):
                stack.append(node.child)
            else:
                stack.extend(reversed(node.children))
        return out

    def without_subject(
        self, exact: Sequence[str], folded: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        """An article's syllables (toned and folded, aligned) without the query's own terms.

        What a story says about its topic is its tone beyond the topic's name: "sạt lở" in a
        landslide topic, "ngộ độc" in a food-poisoning topic is the subject, not a judgement,
        yet sentiment scorers read it as negative. On generated streams whose stories carry
        the topic's keyword, truly neutral stories of such topics came out negative 40-50 % of
        the time (7 % with the keyword blanked), and a turn's lift shrank to half. Runs of
        syllables that spell a positive term (any spacing: "vac xin", "vacxin") are removed.
        """
        spells, prefixes, longest = self._subject_spellings
        # Only a syllable that begins some term's spelling can begin a run to remove; a run
        # is extended only while it still begins one, so most syllables cost one lookup.
        starts = list(compress(count(), map(prefixes.__contains__, folded)))  # in C
        if not starts:
            return list(exact), list(folded)
        keep_x: list[str] = []
        keep_f: list[str] = []
        done, n = 0, len(folded)  # syllables before ``done`` are kept or removed already
        for i in starts:
            if i < done:
                continue
            joined, size, found = folded[i], 1, 0
            last = min(longest, n - i)
            while joined in prefixes:
                if joined in spells:
                    found = size
                if size == last:
                    break
                joined += folded[i + size]
                size += 1
            if found:
                keep_x += exact[done:i]
                keep_f += folded[done:i]
                done = i + found
        keep_x += exact[done:]
        keep_f += folded[done:]
        return keep_x, keep_f

    @cached_property
    def _subject_spellings(self) -> tuple[frozenset[str], frozenset[str], int]:
        """How the query's positive terms are spelled with spaces dropped, every beginning of
        those spellings, and the longest run of syllables to try (a term's syllables + 2)."""
        spells = frozenset(t.joined for t in self.positive)
        prefixes = frozenset(s[:k] for s in spells for k in range(1, len(s) + 1))
        longest = max((len(t.syllables) for t in self.positive), default=0) + 2
        return spells, prefixes, longest

    @cached_property
    def positive(self) -> tuple[Term, ...]:
        """The terms a match can rest on (not under an odd number of NOTs)."""
        return tuple(positive_terms(self.root))


def parse_query(text: str) -> Query:
    """Parse ``text`` into a :class:`Query`; raises :class:`QueryError` with a 1-based position."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(MAX_QUERY_LENGTH + 1, f"query longer than {MAX_QUERY_LENGTH} characters")
    tokens = _tokenize(text)
    root = _Parser(tokens).parse()
    if _evaluate(root, MatchDoc("", ""), None):
        raise QueryError(1, "query matches every article (only negations); add a term to look for")
    return Query(text, root)


def match(query: Query | str, title: str, summary: str = "") -> float:
    """Weight of ``query`` on an article: 0 = no match; title hits weigh more than summary hits."""
    parsed = parse_query(query) if isinstance(query, str) else query
    return parsed.match(title, summary)


# --------------------------------------------------------------------------- many topics


_PREFIX = 4
#: Up to this many distinct terms, TopicMatcher scans them all by substring search.
_SCAN_LIMIT = 64


def _term_key(term: Term) -> str:
    return term.joined[:_PREFIX]


def positive_terms(node: Node, negated: bool = False) -> list[Term]:
    """Terms under an even number of NOTs: a query can only match if one of them is found.

    (The query is monotone: finding a term under an odd number of NOTs can only turn it off,
    and with none of the even ones found it equals its value on an empty article, which
    :func:`parse_query` guarantees is false.)
    """
    if isinstance(node, Term):
        return [] if negated else [node]
    if isinstance(node, Not):
        return positive_terms(node.child, not negated)
    out: list[Term] = []
    for child in node.children:
        out.extend(positive_terms(child, negated))
    return out


def _doc_keys(text: str, keys: set[str]) -> None:
    """Add the index keys a term found in ``text`` could have.

    A term always matches a run of whole syllables, spelled as its own syllables joined
    ("vac xin" ≈ "vacxin"). So its key — the first four letters of the joined term, or the
    whole of it if shorter — is, for the run starting at some syllable, either the run's
    first four letters or the exact concatenation of a short run of whole syllables.
    """
    tokens = text.split()
    count = len(tokens)
    for i, token in enumerate(tokens):
        if len(token) >= _PREFIX:
            keys.add(token[:_PREFIX])
            continue
        joined = token
        keys.add(joined)
        j = i + 1
        while j < count:
            joined += tokens[j]
            j += 1
            if len(joined) >= _PREFIX:
                keys.add(joined[:_PREFIX])
                break
            keys.add(joined)


class TopicMatcher:
    """Many topic queries against one article, running only the queries that can match.

    An inverted index maps the first four letters of each positive term (syllables joined) to
    the topics using it; an article looks up the keys of its own syllable runs, and only those
    topics are evaluated. With tens or hundreds of topics most of them are never touched.
    """

    def __init__(self, topics: Iterable[tuple[int, Query]]) -> None:
        self.topics = list(topics)
        self._by_key: dict[str, set[int]] = {}
        by_joined: dict[str, set[int]] = {}
        for index, (_id, query) in enumerate(self.topics):
            for term in query.positive:
                self._by_key.setdefault(_term_key(term), set()).add(index)
                by_joined.setdefault(term.joined, set()).add(index)
        # Few distinct terms (the usual case): a substring test of each joined term against
        # the article's joined text is cheaper than building the article's keys. A match
        # spells the term's syllables joined, so a term absent from the joined text is absent.
        self._joined = list(by_joined.items()) if len(by_joined) <= _SCAN_LIMIT else None

    def candidates(self, doc: MatchDoc) -> list[int]:
        """Indexes (into ``topics``) of the queries that might match ``doc``, in order."""
        if self._joined is not None:
            text = doc.joined
            return sorted(set().union(*[ids for joined, ids in self._joined if joined in text]))
        found: set[int] = set()
        keys: set[str] = set()
        _doc_keys(doc.title, keys)
        _doc_keys(doc.summary, keys)
        index = self._by_key
        for key in keys & index.keys():
            found |= index[key]
        return sorted(found)

    def match(self, doc: MatchDoc) -> list[tuple[int, float]]:
        """(topic id, weight) of every topic whose query matches ``doc``."""
        out = []
        for index in self.candidates(doc):
            topic_id, query = self.topics[index]
            weight = query.match_doc(doc)
            if weight > 0:
                out.append((topic_id, weight))
        return out
