"""Duplicate handling: canonical URLs for exact copies, MinHash-LSH stories for syndicated ones.

Vietnamese outlets copy each other heavily: one ministry statement reappears on ten sites within
the hour with a reworded headline and the same lead. Trend detection must count *stories* and
*outlets*, never raw copies, or one press release would look like a burst. So:

* :func:`canonical_url` folds away URL noise (tracking parameters, fragments, default ports,
  host case, trailing slashes, parameter order) — the same page fetched twice is one Article.
* :class:`StoryIndex` clusters near-duplicates: MinHash signatures of diacritics-free word
  2-shingles of title + lead (stopwords removed) and a few exact keys give candidates by LSH
  banding; the evidence of :mod:`scanner.evidence` decides (headline and lead agree each by
  containment, no conflicting place, name, number or date, boilerplate leads count for
  nothing), and a story closes 12 hours after its first article. Vietnamese headlines are
  formulaic: a headline match alone merged distinct stories of one frame (issue 15). The
  index is rebuilt from the database after a restart (:meth:`StoryIndex.rebuild`).

The MinHash/LSH arithmetic is the same as datasketch's (affine permutations modulo the Mersenne
prime 2^61-1, banding parameters from ``datasketch.lsh``'s optimiser), but vectorised over one
item's shingles in numpy with a plain-dict band table: datasketch's per-object ``MinHash`` and
``MinHashLSH.insert/query`` cost about 250 µs per item here, more than the whole per-item budget
of the scanner (5,000 items/s per core).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import numpy as np

from scanner.evidence import (
    LEAD_SYLLABLES,
    Features,
    agreeing_slots,
    conflict,
    containment,
)
from scanner.textnorm import content_syllables, fold, syllables

__all__ = [
    "TRACKING_PARAMS",
    "Fingerprint",
    "StoryIndex",
    "canonical_url",
    "content_fingerprint",
]

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "igshid",
        "twclid",
        "ttclid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "vero_id",
        "oly_enc_id",
        "oly_anon_id",
        "rb_clickid",
        "s_cid",
        "spm",
        "zarsrc",
        "zalo_source",
        "ref_src",
        "cmpid",
        "icid",
        "ocid",
        "srsltid",
    }
)
_TRACKING_PREFIXES = ("utm_", "vn_", "pk_", "mtm_", "hsa_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_PATH = re.compile(r"[A-Za-z0-9/%:@!$&'()*+,;=\-._~]*\Z")


def canonical_url(url: str) -> str:
    """One spelling per page: ``HTTPS://Example.vn:443/a/?utm_source=x&b=2&a=1#top`` →
    ``https://example.vn/a?a=1&b=2``."""
    scheme, host, port, username, path, raw_query = _split(url.strip())
    netloc = host.lower().rstrip(".")
    if username:
        netloc = f"{username}@{netloc}"
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{netloc}:{port}"
    path = path or "/"
    if not _SAFE_PATH.match(path):  # most feed links need no quoting: skip the slow path
        path = quote(path, safe="/%:@!$&'()*+,;=-._~")
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = ""
    if raw_query:
        query_pairs = [
            (k, v)
            for k, v in _query_pairs(raw_query)
            if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(_TRACKING_PREFIXES)
        ]
        query = urlencode(sorted(query_pairs))
    return urlunsplit((scheme, netloc, path, query, ""))


#: A URL whose parts need none of urlsplit's special cases: no user, port, IPv6 brackets,
#: percent-escapes in the host, whitespace or control characters anywhere.
_PLAIN_URL = re.compile(
    r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#@:\[\]%\x00-\x20\x7f]+)(/[^?#\x00-\x20\x7f]*)?"
    r"(?:\?([^#\x00-\x20\x7f]*))?(?:#[^\x00-\x20\x7f]*)?\Z"
)

_Parts = tuple[str, str, int | None, str | None, str, str]


def _split(url: str) -> _Parts:
    """(scheme lower-cased, host, port, user, path, query) of ``url``, as ``urlsplit`` and its
    ``hostname``/``port``/``username`` give them.

    Feed links are almost always plain ``scheme://host/path?query``; for those one regular
    expression gives the same parts as urlsplit, whose general parse (an LRU cache that never
    hits, the unsafe-byte scrubbing, and an NFKC pass over every non-ASCII host) cost most of
    :func:`canonical_url`. Anything else — and a non-ASCII host that NFKC would change, which
    urlsplit checks and may refuse — takes urlsplit itself (:func:`_split_urllib`). A
    property test checks the two agree.
    """
    plain = _PLAIN_URL.match(url)
    if plain is None:
        return _split_urllib(url)
    host = plain[2]
    if not host.isascii() and not unicodedata.is_normalized("NFKC", host):
        return _split_urllib(url)
    return plain[1].lower(), host.lower(), None, None, plain[3] or "", plain[4] or ""


def _split_urllib(url: str) -> _Parts:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (
        parts.scheme.lower(),
        parts.hostname or "",
        port,
        parts.username,
        parts.path,
        parts.query,
    )


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """``parse_qsl(query, keep_blank_values=True)``, without its per-field unquoting when
    there is nothing to unquote (no ``%`` and no ``+``): the same pairs, a fraction of the
    cost."""
    if "%" in query or "+" in query:
        return parse_qsl(query, keep_blank_values=True)
    pairs = []
    for part in query.split("&"):
        if part:
            name, _eq, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def content_fingerprint(title: str, summary: str, *, folded: bool = False) -> str:
    """Hash of the folded title + lead: the same text under two URLs of one outlet.

    ``folded=True`` says both are already :func:`~scanner.textnorm.fold`-ed (the pipeline folds
    each item once and reuses it).
    """
    text = f"{title}\n{summary}" if folded else f"{fold(title)}\n{fold(summary)}"
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


# --------------------------------------------------------------------------- MinHash


_MERSENNE = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
_SHIFT = np.uint64(61)
#: Items per numpy batch: 64 permutations × ~60 shingles × 8 B × 128 ≈ 4 MB per array. With
#: fresh arrays per batch, 256 items (8 MB) took twice the time per item of 128 on the dev
#: machine (new memory, page faults); the reused workspace (StoryIndex._workspace) removed
#: most of that difference, and 128 keeps the workspace at ~8 MB.
_FP_CHUNK = 128


#: Candidates ranked by the LSH keys they share, then by entry key (newest first).
_BY_SHARED_KEYS = itemgetter(1, 0)

#: Slots two headlines must share to merge without a lead (:meth:`StoryIndex._agreement`).
_SHARED_SLOTS = 3


def _title_key(terms: frozenset[str]) -> str:
    """The title LSH key: the headline's content syllables, sorted ("" below 4 of them), so a
    copy under the same headline, decorated or with its clauses swapped, is a candidate
    however much its lead was cut or tagged."""
    return " ".join(sorted(terms)) if len(terms) >= 4 else ""


def _mod_mersenne(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``x % (2**61 - 1)`` of a uint64 array, written to ``out`` (``x`` is clobbered).

    2**61 ≡ 1 modulo the Mersenne prime, so x ≡ (x & M) + (x >> 61), a sum below 2M: one
    conditional subtraction finishes it. The same value as numpy's ``%`` (which datasketch
    uses) for every uint64, but ``%`` is a hardware division per element: this takes about
    40 % off the signature arithmetic.
    """
    np.bitwise_and(x, _MERSENNE, out=out)
    x >>= _SHIFT
    out += x
    np.subtract(out, _MERSENNE, out=out, where=out >= _MERSENNE)
    return out


#: syllable → CRC32 of its UTF-8 bytes, and → the UTF-8 bytes of " " + syllable: a pair's
#: CRC32 continued from its first syllable's over " " and the second (``zlib.crc32(b, crc)``
#: is the CRC32 of the concatenation), so no pair is joined or encoded. News text repeats a
#: few thousand syllables.
_CRC: dict[str, int] = {}
_SPACED: dict[str, bytes] = {}
_CRC_LIMIT = 200_000


def _pair_hashes(tokens: list[str]) -> list[int]:
    """``zlib.crc32(f"{a} {b}".encode())`` of every adjacent pair of ``tokens``, in order."""
    try:
        return _continued(tokens)
    except KeyError:  # a syllable seen for the first time
        if len(_CRC) >= _CRC_LIMIT:
            _CRC.clear()
            _SPACED.clear()
        for token in tokens:
            if token not in _CRC:
                encoded = token.encode()
                _SPACED[token] = b" " + encoded
                _CRC[token] = zlib.crc32(encoded)
    try:
        return _continued(tokens)
    except KeyError:  # another thread's index cleared the syllables in between
        return [zlib.crc32(f"{a} {b}".encode()) for a, b in itertools.pairwise(tokens)]


def _continued(tokens: list[str]) -> list[int]:
    """:func:`_pair_hashes` from the remembered syllables (KeyError: one is not)."""
    return list(
        map(zlib.crc32, map(_SPACED.__getitem__, tokens[1:]), map(_CRC.__getitem__, tokens))
    )


def _optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    try:
        from datasketch.lsh import _optimal_param

        b, r = _optimal_param(threshold, num_perm, 0.5, 0.5)
        return int(b), int(r)
    except Exception:  # private helper moved: fall back to a sane fixed banding
        return num_perm // 4, 4


@dataclass(frozen=True)
class Fingerprint:
    """What the index needs to know about one article."""

    signature: np.ndarray
    #: The headline's content syllables, sorted (≥ 4 of them), or "": see :func:`_title_key`.
    title_key: str = ""
    #: The LSH keys (bands, the title key, the title's two ends, the lead key), computed once
    #: by :meth:`StoryIndex.fingerprints`.
    bands: tuple[bytes, ...] = ()
    #: What the headline and lead say (:mod:`scanner.evidence`); what confirms a candidate.
    evidence: Features = field(default_factory=lambda: Features("", ""))


@dataclass
class _Entry:
    story_id: int
    evidence: Features
    signature: np.ndarray
    seen_at: datetime
    bands: tuple[bytes, ...] = ()


class StoryIndex:
    """Near-duplicate index of recent articles, mapping each to its Story id.

    A candidate (from the LSH tables) joins a story only on the evidence of
    :meth:`_agreement`: headline and lead agree each on its own, no slot conflicts, the lead
    is not boilerplate, and the story is younger than ``lifetime`` (counted from its first
    article, so later copies cannot keep it alive). docs/scanner.md states the rule and why.

    Not thread-safe: one scan (or one replay) owns an index at a time.
    """

    def __init__(
        self,
        *,
        window: timedelta = timedelta(hours=72),
        lifetime: timedelta = timedelta(hours=12),
        threshold: float = 0.5,
        num_perm: int = 64,
        lead_tokens: int = 60,
        seed: int = 1,
        max_candidates: int = 24,
    ) -> None:
        if window < lifetime:
            # prune forgets a story whole when its lifetime ends; a shorter window would have
            # to forget some articles of a story that is still open.
            raise ValueError("the window must hold a story's whole lifetime")
        self.window = window
        self.lifetime = lifetime
        self.num_perm = num_perm
        self.lead_tokens = lead_tokens
        self.max_candidates = max_candidates
        rng = np.random.RandomState(seed)
        self._a = rng.randint(1, 1 << 32, size=num_perm, dtype=np.uint64)
        self._b = rng.randint(0, 1 << 32, size=num_perm, dtype=np.uint64)
        self.bands, self.rows = _optimal_bands(threshold, num_perm)
        width = self.rows * self._a.itemsize  # bytes of one band of a signature
        self._spans = [slice(b * width, (b + 1) * width) for b in range(self.bands)]
        # One table per band, one for the title key, one for each end of the title, one for
        # the lead key (last).
        self._tables: list[dict[bytes, tuple[int, ...]]] = [{} for _ in range(self.bands + 4)]
        self._entries: dict[int, _Entry] = {}
        #: The entries still under a placeholder story id (< 0), for :meth:`relabel`.
        self._provisional: dict[int, _Entry] = {}
        #: When each story's first article was seen: its lifetime runs from there.
        self._born: dict[int, datetime] = {}
        #: The entry keys of each story, and (born, story) in a heap ordered by birth (a
        #: story pushed again when an earlier article moves its birth back): :meth:`prune`
        #: visits only the stories whose lifetime ended, not every entry of the index. Tuples,
        #: like the LSH buckets below, so that the garbage collector does not track them.
        self._members: dict[int, tuple[int, ...]] = {}
        self._closing: list[tuple[datetime, int]] = []
        #: Lead keys seen under two or more stories: a masthead or boilerplate, no evidence.
        self.boilerplate: set[str] = set()
        self._clock: datetime | None = None  # the latest time added
        self._next_key = 0
        self._scratch = np.empty(0, dtype=np.uint64)  # see _workspace

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry (before :meth:`rebuild`, when the stories it held were rolled
        back); the hash functions and the workspace stay."""
        self._tables = [{} for _ in range(self.bands + 4)]
        self._entries = {}
        self._provisional = {}
        self._born = {}
        self._members = {}
        self._closing = []

    # ---------------------------------------------------------------- signatures

    def fingerprint(self, title: str, summary: str = "") -> Fingerprint:
        """The fingerprint of one raw headline and lead."""
        return self.fingerprints([(title, summary)])[0]

    def fingerprints(self, pairs: Sequence[tuple[str, str]]) -> list[Fingerprint]:
        """:meth:`fingerprint` of many raw (title, summary) pairs."""
        return self.syllable_fingerprints([(t, s, syllables(t), syllables(s)) for t, s in pairs])

    def syllable_fingerprints(
        self, items: Sequence[tuple[str, str, Sequence[str], Sequence[str]]]
    ) -> list[Fingerprint]:
        """Fingerprints of (raw title, raw lead, folded title syllables, folded lead
        syllables), the MinHash signatures in a few numpy calls.

        The pipeline has the syllables already (:func:`~scanner.textnorm.tokens`); the raw
        text gives the evidence (capitals tell names, punctuation tells tags). The
        permutations of all shingles of a chunk of items are one (num_perm × shingles) array,
        and each item's signature is a ``minimum.reduceat`` over its columns: per-item numpy
        calls cost more in overhead than the arithmetic itself.

        Items of the same raw headline and lead (copies in one batch) share one fingerprint,
        made once: it depends on nothing else, and nothing changes it.
        """
        first: dict[tuple[str, str], int] = {}
        unique: list[tuple[str, str, Sequence[str], Sequence[str]]] = []
        where: list[int] = []
        for item in items:
            at = first.setdefault((item[0], item[1]), len(unique))
            if at == len(unique):
                unique.append(item)
            where.append(at)
        if len(unique) == len(items):
            return self._fingerprints(items)
        return list(map(self._fingerprints(unique).__getitem__, where))

    def _fingerprints(
        self, items: Sequence[tuple[str, str, Sequence[str], Sequence[str]]]
    ) -> list[Fingerprint]:
        """:meth:`syllable_fingerprints` of distinct items."""
        out: list[Fingerprint] = []
        lead_tokens = self.lead_tokens
        share = lead_tokens == LEAD_SYLLABLES  # the evidence reads as much of the lead
        for start in range(0, len(items), _FP_CHUNK):
            chunk = items[start : start + _FP_CHUNK]
            hashed: list[list[int]] = []
            evidence: list[Features] = []
            for raw_title, raw_lead, title, lead in chunk:
                contents = content_syllables(title), content_syllables(lead[:lead_tokens])
                hashed.append(self._shingles(title, *contents))
                evidence.append(
                    Features(raw_title, raw_lead, title, lead, contents if share else None)
                )
            signatures = self._signatures(hashed)
            for found, signature in zip(evidence, signatures, strict=True):
                key = _title_key(found.title_terms)
                head, tail = found.title_ends
                bands = (
                    *map(signature.tobytes().__getitem__, self._spans),
                    key.encode("utf-8"),
                    head.encode("utf-8"),
                    tail.encode("utf-8"),
                    found.lead_key.encode("utf-8"),
                )
                out.append(Fingerprint(signature, key, bands, found))
        return out

    def _shingles(
        self, title: Sequence[str], content: list[str], lead_content: list[str]
    ) -> list[int]:
        """CRC32s of the distinct 2-shingles of the title's content syllables, "|" and those of
        the lead's first 60 syllables (single syllables too when there are under 4); the
        title's syllables joined when it has none. A repeated shingle may be hashed twice:
        the signature is a minimum, which does not see repeats."""
        tokens = [*content, "|", *lead_content]
        hashes = _pair_hashes(tokens)
        if len(set(hashes)) >= 4:  # so at least 4 distinct pairs: no single syllables
            return hashes
        shingles = list(map(" ".join, set(itertools.pairwise(tokens))))
        if len(shingles) < 4:  # single syllables have no space: never equal to a pair
            shingles += {t for t in tokens if t != "|"}
        if not shingles:
            shingles = [" ".join(title) or "-"]
        return list(map(zlib.crc32, map(str.encode, shingles)))

    def _signatures(self, hashed: list[list[int]]) -> np.ndarray:
        """One MinHash signature row per item of ``hashed`` (the shingle hashes of each)."""
        counts = [len(h) for h in hashed]
        flat = np.fromiter(itertools.chain.from_iterable(hashed), np.uint64, sum(counts))
        permuted, hashes = self._workspace(flat.size)
        np.multiply.outer(self._a, flat, out=permuted)
        permuted += self._b[:, None]
        _mod_mersenne(permuted, out=hashes)
        hashes &= _MAX_HASH
        offsets = np.zeros(len(counts), dtype=np.intp)
        np.cumsum(counts[:-1], out=offsets[1:])
        # reduceat makes a new array: no signature is a view of the reused workspace.
        return np.ascontiguousarray(np.minimum.reduceat(hashes, offsets, axis=1).T)

    def _workspace(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Two (num_perm × width) uint64 arrays over one buffer kept between calls.

        Fresh ~4 MB arrays for every chunk cost as much as the arithmetic on them (page
        faults and cold memory on each allocation); the buffer only grows.
        """
        size = self.num_perm * width
        if self._scratch.size < 2 * size:
            self._scratch = np.empty(2 * size, dtype=np.uint64)
        first = self._scratch[:size].reshape(self.num_perm, width)
        return first, self._scratch[size : 2 * size].reshape(self.num_perm, width)

    # ---------------------------------------------------------------- lookup

    def find(self, fp: Fingerprint, at: datetime | None = None) -> int | None:
        """The Story id of the best confirmed near-duplicate, or None for a new story.

        ``at`` is the article's time (default: the latest time added); a story whose first
        article is more than ``lifetime`` before it is closed. Candidates are ranked by how
        many LSH keys they share (a cheap Jaccard estimate) and only the best few of each
        story are confirmed; a popular story with hundreds of copies must not make every
        lookup scan all of them.
        """
        keys = fp.bands
        if fp.evidence.lead_key in self.boilerplate:
            keys = keys[:-1]
        # One lookup per table in C; b"" (no title or lead key) is never a stored key.
        hits = list(filter(None, map(dict.get, self._tables, keys)))
        if not hits:
            return None
        when = at if at is not None else self._clock
        shared: dict[int, int] = {}
        for candidate in itertools.chain.from_iterable(hits):
            shared[candidate] = shared.get(candidate, 0) + 1
        ranked = heapq.nlargest(self.max_candidates, shared.items(), key=_BY_SHARED_KEYS)
        agreeing: list[tuple[float, bool, _Entry]] = []
        checked_per_story: dict[int, int] = {}
        for candidate, _keys in ranked:
            entry = self._entries[candidate]
            story = entry.story_id
            if checked_per_story.get(story, 0) >= 3:
                continue
            checked_per_story[story] = checked_per_story.get(story, 0) + 1
            if when is not None and when - self._born[story] > self.lifetime:
                continue
            agreement = self._agreement(fp, entry)
            if agreement is not None:
                agreeing.append((*agreement, entry))
        # The best agreeing candidate without a slot conflict (the first of equal ranks).
        # Slots are read only here, best first: reading names and numbers is most of the
        # evidence's cost, and most candidates fail on containment or lose on rank.
        agreeing.sort(key=lambda a: -a[0])
        for _rank, aligned, entry in agreeing:
            if not conflict(fp.evidence, entry.evidence, leads=aligned):
                return entry.story_id
        return None

    def _agreement(self, fp: Fingerprint, entry: _Entry) -> tuple[float, bool] | None:
        """How well ``fp``'s text agrees with ``entry`` (higher is better) and whether the
        leads align (the ``leads`` of :func:`scanner.evidence.conflict`), or None: not one
        story. :meth:`find` then refuses a candidate whose slots conflict.

        * a slot conflict (:func:`scanner.evidence.conflict`) is never one story;
        * otherwise headline containment ≥ 0.5 and lead containment ≥ 0.5, or headline
          ≥ 0.3 and lead ≥ 0.8 (a re-titled copy over the same lead);
        * two leads that disagree are two stories, however alike the headlines;
        * without a lead on one side (none, the headline again, or boilerplate), only the
          same headline: one's content syllables all in the other's, at least 5 of them, at
          most 4 syllables of decoration apart;
        * without a lead on one side, also headlines that agree (containment ≥ 0.75) and name
          the same slots, at least three, each side's all mentioned by the other: "Long
          Thành (Bình Định)" in both is the evidence the missing lead would have given.
        """
        a, b = fp.evidence, entry.evidence
        leads = (
            bool(a.lead_grams)
            and bool(b.lead_grams)
            and a.lead_key not in self.boilerplate
            and b.lead_key not in self.boilerplate
        )
        lead = containment(a.lead_grams, b.lead_grams) if leads else 0.0
        aligned = lead >= 0.3
        small, large = sorted((a.title_size, b.title_size))
        title = containment(a.title_terms, b.title_terms) if small >= 2 else 0.0
        if leads and ((title >= 0.5 and lead >= 0.5) or (title >= 0.3 and lead >= 0.8)):
            return title + lead, aligned
        if leads:
            return None  # two leads that disagree: two stories, however alike the headlines
        if title == 1.0 and small >= 5 and large <= small + 4:
            return 1.0, aligned
        if title >= 0.75 and agreeing_slots(a, b) >= _SHARED_SLOTS:
            return title, aligned
        return None

    def add(self, story_id: int, fp: Fingerprint, seen_at: datetime) -> None:
        """Remember an article of ``story_id`` so later copies find it.

        ``seen_at`` is the article's time: the story's lifetime runs from its earliest. A lead
        key already held by another story marks the lead as boilerplate (and is no longer
        indexed: a masthead under every headline would make every lookup a long scan)."""
        key = self._next_key
        self._next_key += 1
        bands = fp.bands
        entry = _Entry(story_id, fp.evidence, fp.signature, seen_at, bands)
        self._entries[key] = entry
        if story_id < 0:
            self._provisional[key] = entry
        self._born_at(story_id, seen_at)
        keys = self._members.get(story_id)
        self._members[story_id] = (key,) if keys is None else (*keys, key)
        if self._clock is None or seen_at > self._clock:
            self._clock = seen_at
        lead_table = self._tables[-1]
        lead_key = fp.evidence.lead_key
        if lead_key in self.boilerplate:
            bands = bands[:-1]  # zip below stops before the lead table
        elif lead_key:
            sharing = lead_table.get(bands[-1], ())
            if any(self._entries[m].story_id != story_id for m in sharing):
                self.boilerplate.add(lead_key)
                del lead_table[bands[-1]]
                bands = bands[:-1]
        # Buckets are tuples, not sets: tuples of ints drop out of the garbage collector's
        # tracking, so a big index does not make every full collection slower (and growing it
        # by ~15 sets per article triggered those collections over and over).
        for table, band in zip(self._tables, bands, strict=False):
            if band:
                members = table.get(band)
                table[band] = (key,) if members is None else (*members, key)

    def _born_at(self, story_id: int, seen_at: datetime) -> None:
        """Record that ``story_id`` had an article at ``seen_at`` (its birth is the earliest)."""
        born = self._born.get(story_id)
        if born is None or seen_at < born:
            self._born[story_id] = seen_at
            heapq.heappush(self._closing, (seen_at, story_id))

    def relabel(self, mapping: dict[int, int]) -> None:
        """Swap provisional story ids (negative placeholders before the INSERT) for the real
        ones in ``mapping``. Only entries still under a placeholder are visited, not the whole
        index (which holds every article of the window)."""
        for key, entry in list(self._provisional.items()):
            new = mapping.get(entry.story_id)
            if new is not None:
                entry.story_id = new
                del self._provisional[key]
        for old, new in mapping.items():
            born = self._born.pop(old, None)
            if born is not None:
                self._born_at(new, born)
            keys = self._members.pop(old, None)
            if keys is not None:
                self._members[new] = (*self._members.get(new, ()), *keys)

    def prune(self, now: datetime) -> int:
        """Forget articles older than the window and articles of stories past their lifetime
        (no later article can join those); returns how many were dropped.

        A story is born no later than any of its articles and its lifetime fits in the window,
        so an article older than the window belongs to a closed story: forgetting the closed
        stories whole forgets both. They come off the heap of births, oldest first; a heap
        entry whose birth is no longer the story's (moved back, or the story gone) is stale.
        """
        closed = now - self.lifetime
        closing, born = self._closing, self._born
        dropped = 0
        while closing and closing[0][0] < closed:
            at, story = heapq.heappop(closing)
            if born.get(story) != at:
                continue
            del born[story]
            for key in self._members.pop(story, ()):
                entry = self._entries.pop(key)
                self._provisional.pop(key, None)
                dropped += 1
                for table, band in zip(self._tables, entry.bands, strict=True):
                    members = table.get(band)
                    if members is None or key not in members:
                        continue  # no key of its band (b""), or a lead found to be boilerplate
                    if len(members) == 1:
                        del table[band]
                    else:  # a key is in a bucket once
                        position = members.index(key)
                        table[band] = members[:position] + members[position + 1 :]
        return dropped

    # ---------------------------------------------------------------- persistence

    def rebuild(self, rows: Iterable[tuple[int, str, str, datetime]], now: datetime) -> int:
        """Refill from (story_id, title, summary, seen_at) rows, e.g. after a restart.

        The index holds no state that the database lacks: signatures, evidence and the
        boilerplate leads are recomputed from the stored titles and leads (in row order), and
        each story's birth is its earliest row, so a restart clusters as the running process
        would.
        """
        rows = list(rows)
        born: dict[int, datetime] = {}
        for story_id, _t, _s, seen_at in rows:
            if story_id not in born or seen_at < born[story_id]:
                born[story_id] = seen_at
        cutoff = now - self.window
        closed = now - self.lifetime
        recent = [row for row in rows if row[3] >= cutoff and born[row[0]] >= closed]
        fingerprints = self.fingerprints([(title, summary) for _i, title, summary, _s in recent])
        for (story_id, _t, _s, seen_at), fp in zip(recent, fingerprints, strict=True):
            self.add(story_id, fp, seen_at)
            self._born_at(story_id, born[story_id])
        return len(recent)
