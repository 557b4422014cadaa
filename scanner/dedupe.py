"""Duplicate handling: canonical URLs for exact copies, MinHash-LSH stories for syndicated ones.

Vietnamese outlets copy each other heavily: one ministry statement reappears on ten sites within
the hour with a reworded headline and the same lead. Trend detection must count *stories* and
*outlets*, never raw copies, or one press release would look like a burst. So:

* :func:`canonical_url` folds away URL noise (tracking parameters, fragments, default ports,
  host case, trailing slashes, parameter order) — the same page fetched twice is one Article.
* :class:`StoryIndex` clusters near-duplicates: MinHash signatures of diacritics-free word
  2-shingles of title + lead (stopwords removed), candidate lookup by LSH banding, and a
  rapidfuzz title check to confirm — a shared boilerplate lead alone must not merge two
  different stories. The index only covers a recent window (72 h by default) and is rebuilt
  from the database after a restart (:meth:`StoryIndex.rebuild`).

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import numpy as np
from rapidfuzz import fuzz

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


def _title_key(content: list[str]) -> str:
    """The exact-title LSH key of a title's content syllables ("" below 4 of them)."""
    return " ".join(content) if len(content) >= 4 else ""


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
    title: str  # folded
    shingles: int
    #: Folded content syllables of the title (≥ 4 of them), or "": an exact-title LSH key, so
    #: a copy under the same headline is a candidate however much its lead was cut or tagged.
    title_key: str = ""
    #: The LSH keys (bands, then the title key), computed once by :meth:`StoryIndex.fingerprints`.
    bands: tuple[bytes, ...] = ()


@dataclass
class _Entry:
    story_id: int
    title: str
    signature: np.ndarray
    seen_at: datetime
    bands: tuple[bytes, ...] = ()


class StoryIndex:
    """Near-duplicate index of recent articles, mapping each to its Story id.

    Not thread-safe: one scan (or one replay) owns an index at a time.
    """

    def __init__(
        self,
        *,
        window: timedelta = timedelta(hours=72),
        threshold: float = 0.5,
        num_perm: int = 64,
        title_ratio: float = 80.0,
        min_title_ratio_with_lead: float = 55.0,
        lead_jaccard: float = 0.6,
        lead_tokens: int = 60,
        seed: int = 1,
        max_candidates: int = 24,
    ) -> None:
        self.window = window
        self.num_perm = num_perm
        self.title_ratio = title_ratio
        self.min_title_ratio_with_lead = min_title_ratio_with_lead
        self.lead_jaccard = lead_jaccard
        self.lead_tokens = lead_tokens
        self.max_candidates = max_candidates
        rng = np.random.RandomState(seed)
        self._a = rng.randint(1, 1 << 32, size=num_perm, dtype=np.uint64)
        self._b = rng.randint(0, 1 << 32, size=num_perm, dtype=np.uint64)
        self.bands, self.rows = _optimal_bands(threshold, num_perm)
        width = self.rows * self._a.itemsize  # bytes of one band of a signature
        self._spans = [slice(b * width, (b + 1) * width) for b in range(self.bands)]
        # One table per band, plus one for the exact-title key.
        self._tables: list[dict[bytes, tuple[int, ...]]] = [{} for _ in range(self.bands + 1)]
        self._entries: dict[int, _Entry] = {}
        #: The entries still under a placeholder story id (< 0), for :meth:`relabel`.
        self._provisional: dict[int, _Entry] = {}
        self._next_key = 0
        self._scratch = np.empty(0, dtype=np.uint64)  # see _workspace

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry (before :meth:`rebuild`, when the stories it held were rolled
        back); the hash functions and the workspace stay."""
        self._tables = [{} for _ in range(self.bands + 1)]
        self._entries = {}
        self._provisional = {}

    # ---------------------------------------------------------------- signatures

    def fingerprint(self, title: str, summary: str = "", *, folded: bool = False) -> Fingerprint:
        """MinHash of the word 2-shingles (plus single words, for very short texts)."""
        return self.fingerprints([(title, summary)], folded=folded)[0]

    def fingerprints(
        self, pairs: Sequence[tuple[str, str]], *, folded: bool = False
    ) -> list[Fingerprint]:
        """:meth:`fingerprint` of many (title, summary) pairs (``folded``: already folded)."""
        split = str.split if folded else syllables
        return self.syllable_fingerprints([(split(t), split(s)) for t, s in pairs])

    def syllable_fingerprints(
        self, items: Sequence[tuple[Sequence[str], Sequence[str]]]
    ) -> list[Fingerprint]:
        """Fingerprints from each item's folded title and lead syllables, in a few numpy calls.

        The pipeline has the syllables already (:func:`~scanner.textnorm.tokens`). The
        permutations of all shingles of a chunk of items are one (num_perm × shingles) array,
        and each item's signature is a ``minimum.reduceat`` over its columns: per-item numpy
        calls cost more in overhead than the arithmetic itself.
        """
        out: list[Fingerprint] = []
        for start in range(0, len(items), _FP_CHUNK):
            chunk = items[start : start + _FP_CHUNK]
            titles = [(" ".join(title), content_syllables(title)) for title, _lead in chunk]
            hashed = [
                self._shingles(title, content, lead)
                for (title, content), (_title, lead) in zip(titles, chunk, strict=True)
            ]
            signatures = self._signatures(hashed)
            for (title, content), shingles, signature in zip(
                titles, hashed, signatures, strict=True
            ):
                key = _title_key(content)
                bands = (*map(signature.tobytes().__getitem__, self._spans), key.encode("utf-8"))
                out.append(Fingerprint(signature, title, len(shingles), key, bands))
        return out

    def _shingles(self, title: str, content: list[str], lead: Sequence[str]) -> list[int]:
        """CRC32s of the distinct 2-shingles of the title's content syllables, "|" and those of
        the lead's first 60 syllables (single syllables too when there are under 4)."""
        tokens = [*content, "|", *content_syllables(lead[: self.lead_tokens])]
        # Distinct pairs first (their hashes come from the syllables'), then one string each.
        shingles = list(map(" ".join, set(itertools.pairwise(tokens))))
        if len(shingles) < 4:  # single syllables have no space: never equal to a pair
            shingles += {t for t in tokens if t != "|"}
        if not shingles:
            shingles = [title or "-"]
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

    def _band_keys(self, fp: Fingerprint) -> list[bytes]:
        """The LSH band keys of ``fp``, then its exact-title key (b"" when it has none)."""
        if len(fp.bands) == self.bands + 1:
            return list(fp.bands)
        raw = fp.signature.tobytes()
        width = self.rows * fp.signature.itemsize
        keys = [raw[i * width : (i + 1) * width] for i in range(self.bands)]
        keys.append(fp.title_key.encode("utf-8"))
        return keys

    # ---------------------------------------------------------------- lookup

    def find(self, fp: Fingerprint) -> int | None:
        """The Story id of the best confirmed near-duplicate, or None for a new story.

        Candidates are ranked by how many LSH bands they share (a cheap Jaccard estimate) and
        only the best few of each story are confirmed; a popular story with hundreds of copies
        must not make every lookup scan all of them.
        """
        # One lookup per table in C; b"" (no title key) is never a stored key, so it misses.
        hits = [hit for hit in map(dict.get, self._tables, self._band_keys(fp)) if hit]
        if not hits:
            return None
        shared: dict[int, int] = {}
        for candidate in itertools.chain.from_iterable(hits):
            shared[candidate] = shared.get(candidate, 0) + 1
        ranked = heapq.nlargest(self.max_candidates, shared.items(), key=lambda kv: (kv[1], kv[0]))
        best: tuple[float, int] | None = None
        checked_per_story: dict[int, int] = {}
        for candidate, _bands in ranked:
            entry = self._entries[candidate]
            if checked_per_story.get(entry.story_id, 0) >= 3:
                continue
            checked_per_story[entry.story_id] = checked_per_story.get(entry.story_id, 0) + 1
            ratio = fuzz.token_set_ratio(fp.title, entry.title)
            if ratio < self.min_title_ratio_with_lead:
                continue  # unconfirmed whatever the leads share: skip the signature compare
            jaccard = float(np.count_nonzero(entry.signature == fp.signature)) / self.num_perm
            if ratio >= self.title_ratio or jaccard >= self.lead_jaccard:
                rank = jaccard + ratio / 100.0
                if best is None or rank > best[0]:
                    best = (rank, entry.story_id)
        return best[1] if best else None

    def add(self, story_id: int, fp: Fingerprint, seen_at: datetime) -> None:
        """Remember an article of ``story_id`` so later copies find it."""
        key = self._next_key
        self._next_key += 1
        bands = fp.bands if len(fp.bands) == self.bands + 1 else tuple(self._band_keys(fp))
        entry = _Entry(story_id, fp.title, fp.signature, seen_at, bands)
        self._entries[key] = entry
        if story_id < 0:
            self._provisional[key] = entry
        # Buckets are tuples, not sets: tuples of ints drop out of the garbage collector's
        # tracking, so a big index does not make every full collection slower (and growing it
        # by ~15 sets per article triggered those collections over and over).
        for table, band in zip(self._tables, bands, strict=True):
            if band:
                members = table.get(band)
                table[band] = (key,) if members is None else (*members, key)

    def relabel(self, mapping: dict[int, int]) -> None:
        """Swap provisional story ids (negative placeholders before the INSERT) for the real
        ones in ``mapping``. Only entries still under a placeholder are visited, not the whole
        index (which holds every article of the window)."""
        for key, entry in list(self._provisional.items()):
            new = mapping.get(entry.story_id)
            if new is not None:
                entry.story_id = new
                del self._provisional[key]

    def prune(self, now: datetime) -> int:
        """Forget articles older than the window; returns how many were dropped."""
        cutoff = now - self.window
        old = [k for k, e in self._entries.items() if e.seen_at < cutoff]
        for key in old:
            entry = self._entries.pop(key)
            self._provisional.pop(key, None)
            for table, band in zip(self._tables, entry.bands, strict=True):
                members = table.get(band)
                if members is not None:
                    kept = tuple(k for k in members if k != key)
                    if kept:
                        table[band] = kept
                    else:
                        del table[band]
        return len(old)

    # ---------------------------------------------------------------- persistence

    def rebuild(self, rows: Iterable[tuple[int, str, str, datetime]], now: datetime) -> int:
        """Refill from (story_id, title, summary, seen_at) rows, e.g. after a restart.

        The index holds no state that the database lacks: signatures are recomputed from the
        stored title and lead, so a restart clusters exactly as the running process would.
        """
        cutoff = now - self.window
        recent = [row for row in rows if row[3] >= cutoff]
        fingerprints = self.fingerprints([(title, summary) for _i, title, summary, _s in recent])
        for (story_id, _t, _s, seen_at), fp in zip(recent, fingerprints, strict=True):
            self.add(story_id, fp, seen_at)
        return len(recent)
