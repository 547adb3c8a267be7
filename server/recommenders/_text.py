"""Product text for the text-based recommenders (private: not a recommender).

``product_documents(ds)``: one document per dataset item, the title twice (it matters most),
brand, the category path levels, tags, attribute values and the start of the description.
``text_index(ds)``: the TF-IDF (words + 2-3 character n-grams) of those documents for item
neighbours (content_based); ``search_index(ds)``: the same with the full vocabulary, for
queries (search_keyword, demographic interests). Both built once per model build through
``ds.derived``. ``fuzzy_index(ds)``: a character-heavy index (1-3
grams, words weigh only 20 %) of the short fields only, for zero-result alternatives, where a
misspelling or half a Korean word must still land somewhere.
"""
from __future__ import annotations

import functools

import numpy as np

from ._common import Neighbours, SeedVectors, seed_vectors
from ._tables import NO_DROP, NOTHING, QuerySpec, query_of
from .kernels.seeds import walk_code
from .kernels.sums import NO_MORE
from .base import SEEDS, Candidates, LazyReasons, seeds_key
from .kernels.text import TfidfIndex

DESCRIPTION_CHARS = 600
NEIGHBOURS = 50
MAX_PRECOMPUTED = 8_000    # above this many items, a product's text neighbours are computed on
                           # first use and cached (the all-pairs product grows with n²)
CACHE_ITEMS = 100_000


def _attr_text(attrs: dict) -> str:
    out = []
    for v in attrs.values():
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            out.extend(str(x) for x in v)
    return " ".join(out)


def product_documents(ds, description: bool = True) -> list[str]:
    docs = []
    for i in range(ds.n_items):
        title = ds.title[i] or ""
        parts = [title, title, ds.category[i].replace(" > ", " ") if ds.category[i] else ""]
        brand = ds.brands[ds.brand_code[i]] if ds.brand_code[i] >= 0 else ""
        parts += [brand, " ".join(ds.tags[i]), _attr_text(ds.attrs[i])]
        if description:
            parts.append((ds.description[i] or "")[:DESCRIPTION_CHARS])
        docs.append(" ".join(p for p in parts if p))
    return docs


def text_index(ds) -> TfidfIndex:
    """For item neighbours: terms in more than half of a 50+ product catalog are dropped (they
    say little about similarity and make the all-pairs product dense: half the build time)."""
    return ds.derived("text_index", lambda ds: search_index(ds).pruned(0.5) if ds.n_items >= 50 else search_index(ds))


def search_index(ds) -> TfidfIndex:
    """For queries: the full vocabulary, so a search for the shop's most common word ("셔츠" in
    a shirt shop) still matches; only query scoring, no all-pairs neighbours."""
    return ds.derived("search_index", lambda ds: TfidfIndex(word_weight=0.5).fit(product_documents(ds)))


def fuzzy_index(ds) -> TfidfIndex:
    return ds.derived("fuzzy_index", lambda ds: TfidfIndex(ngram_range=(1, 3), word_weight=0.2)
                      .fit(product_documents(ds, description=False)))


class TextNeighbours:
    """Top-k text neighbours per item, precomputed for catalogs up to ``MAX_PRECOMPUTED`` items,
    else computed for a seed on first use (one column gather) and cached for the model's life."""

    def __init__(self, index: TfidfIndex, k: int = NEIGHBOURS):
        self.index = index
        self.k = k
        self.idx = self.score = None
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if 0 < index.n_items <= MAX_PRECOMPUTED:
            idx, sc = index.neighbors(k, min_score=0.05)
            self.idx, self.score = idx.astype(np.int32), sc.astype(np.float32)

    def of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= i < self.index.n_items:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        if self.idx is not None:
            row, sc = self.idx[i], self.score[i]
            m = row >= 0
            return row[m], sc[m]
        hit = self._cache.get(i)
        if hit is not None:
            return hit
        X = self.index.matrix
        a, b = X.indptr[i], X.indptr[i + 1]
        s = self.index.vector_scores(X.indices[a:b], X.data[a:b])
        s[i] = 0
        top = np.argpartition(-s, self.k)[: self.k] if len(s) > self.k else np.arange(len(s))
        top = top[np.argsort(-s[top], kind="stable")]
        top = top[s[top] >= 0.05]
        out = (top.astype(np.int32), s[top].astype(np.float32))
        if len(self._cache) < CACHE_ITEMS:
            self._cache[i] = out
        return out

    def candidates(self, seeds: list[tuple[int, float]], k: int, ds, reason: str, vectors: SeedVectors | None = None):
        """For precomputed rows: the ``k`` best of Σ seed weight × similarity, as ``gather`` +
        ``top_positions`` would give them, and each one's closest seed: ``query``'s one
        ``neighbour_top`` kernel call (``kernels/sums.py``: the same tie rule, equal scores by
        item). ``vectors``: ``seeds`` as ``SeedVectors`` when the request has them."""
        got = self.query(seeds, reason, vectors).answer(k, ds)
        return got if len(got.items) else Candidates.empty()

    def query(self, seeds: list[tuple[int, float]] | None, reason: str, vectors: SeedVectors | None = None):
        """``candidates``' kernel call as a ``TableQuery`` (``_tables``; precomputed rows only):
        the seeds in range (any weight), ``NOTHING`` when none is. ``seeds`` may be None when
        ``vectors`` are given (``vectors.pairs()``)."""
        n = self.index.n_items
        v = vectors if vectors is not None else SeedVectors(seeds)
        if v.low >= 0 and v.end <= n:    # (every seed in range: any weight)
            if not len(v.items):
                return NOTHING
            s, w = v.items, v.weights
        else:
            valid = [(i, w) for i, w in (seeds if seeds is not None else v.pairs()) if 0 <= i < n]
            if not valid:
                return NOTHING
            s, w = seed_vectors(valid)
        nb = self.rows()
        fmt = reason_format(reason)
        return query_of((nb, None, 1.0, 0.0, s, w, *NO_MORE, NO_DROP, fmt, nb.reason_texts(fmt)))

    def rows(self) -> Neighbours:
        """The precomputed rows as ``Neighbours`` (made on first use): ``query``'s table."""
        nb = self.__dict__.get("_nb")
        if nb is None:
            nb = self.__dict__.setdefault("_nb", Neighbours(self.idx, self.score))
        return nb

    def gather(self, seeds: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Σ seed weight × similarity per item; (items, scores, best seed), seeds removed."""
        n = self.index.n_items
        if self.idx is not None:  # precomputed rows: one gather for all seeds
            valid = [(i, w) for i, w in seeds if 0 <= i < n]
            s = np.fromiter((i for i, _ in valid), np.int64, len(valid))
            rows = self.idx[s]
            m = rows >= 0
            idx = rows[m]
            sc = (self.score[s] * np.fromiter((w for _, w in valid), np.float32, len(valid))[:, None])[m]
            src = np.broadcast_to(s.astype(np.int32)[:, None], rows.shape)[m]
        else:
            parts_i, parts_s, parts_src = [], [], []
            for i, w in seeds:
                row, sc = self.of(i)
                if len(row):
                    parts_i.append(row)
                    parts_s.append(sc * w)
                    parts_src.append(np.full(len(row), i, np.int32))
            idx = np.concatenate(parts_i) if parts_i else np.zeros(0, np.int32)
            sc = np.concatenate(parts_s) if parts_s else np.zeros(0, np.float32)
            src = np.concatenate(parts_src) if parts_src else np.zeros(0, np.int32)
        if not len(idx):
            e = np.zeros(0, np.int32)
            return e, np.zeros(0, np.float32), e
        uniq, inv = np.unique(idx, return_inverse=True)
        total = np.bincount(inv, weights=sc, minlength=len(uniq))
        order = np.lexsort((-sc, inv))
        first = np.ones(len(order), bool)
        first[1:] = inv[order][1:] != inv[order][:-1]
        best = src[order][first]
        keep = ~(uniq[:, None] == np.array([i for i, _ in seeds], np.int64)[None, :]).any(axis=1)
        return uniq[keep].astype(np.int32), total[keep].astype(np.float32), best[keep].astype(np.int32)


@functools.lru_cache(maxsize=64)
def reason_format(reason: str) -> str:
    """``reason`` + " {}" as a ``str.format`` template naming the closest seed (its braces
    escaped; made once per reason, not per call: the reasons are the sources' constants)."""
    return reason.replace("{", "{{").replace("}", "}}") + " {}"


def text_neighbours(ds) -> TextNeighbours:
    return ds.derived("text_neighbours", lambda ds: TextNeighbours(text_index(ds)))


def top_positions(scores: np.ndarray, k: int, items: np.ndarray | None = None) -> np.ndarray:
    """Positions of the ``k`` best positive scores, best first; equal scores: the lower item
    first (of ``items``, unique; without them the lower position), the project's tie rule."""
    pos = (scores > 0).nonzero()[0]
    if len(pos) > k:
        vals = scores[pos]
        # the k-th largest value (a partition of values: half the cost of an argpartition); the
        # k best are the values above it, then as many of those equal to it as there is room
        # for, lower items first
        part = vals.copy()
        part.partition(len(vals) - k)
        kth = part[len(vals) - k]
        top = vals >= kth
        if np.count_nonzero(top) == k:
            pos = pos[top]
        else:
            at = (vals == kth).nonzero()[0]
            if items is not None:
                at = at[items[pos[at]].argsort(kind="stable")]
            above = (vals > kth).nonzero()[0]
            keep = np.concatenate((above, at[:k - len(above)]))
            keep.sort()
            pos = pos[keep]
    if items is None:   # ascending positions: a stable sort by score breaks ties by position
        return pos[(-scores[pos]).argsort(kind="stable")]
    return pos[np.lexsort((items[pos], -scores[pos]))]


def seed_neighbour_candidates(model, ds, ctx, k: int, reason: str):
    """Candidates from a neighbour model (``gather(seeds) -> items, scores, best seed``) for this
    request's seed items, best ``k`` first; each reason is ``reason`` + the closest seed's name,
    built only for the products shown. Shared by the text and image similarity recommenders."""
    if model is None:
        return Candidates.empty()
    seeds = seeds_key(ctx)   # (``ctx.seed_items()``, the request's memoised tuple)
    if not seeds:
        return Candidates.empty()
    if isinstance(model, TextNeighbours) and model.idx is not None:   # precomputed rows: the dense sum
        return model.candidates(seeds, k, ds, reason, ctx.seed_vectors(SEEDS))
    items, scores, best = model.gather(seeds)
    pos = top_positions(scores, k, items)
    if not len(pos):
        return Candidates.empty()
    best = best[pos]
    return Candidates(items[pos], scores[pos], LazyReasons(lambda n: f"{reason} {ds.label(int(best[n]))}", len(pos)))


def seed_neighbour_spec(model, reason: str) -> QuerySpec | None:
    """``seed_neighbour_query`` as a ``_tables.QuerySpec`` (the page's seeds walked, any weight)
    when ``model`` has precomputed text rows, one per item of its index; None otherwise (its
    ``query`` answers)."""
    if not (isinstance(model, TextNeighbours) and model.idx is not None and len(model.idx) == model.index.n_items):
        return None
    nb, fmt = model.rows(), reason_format(reason)
    return QuerySpec(nb, walk_code(SEEDS, page=True, positive=False), fmt, nb.reason_texts(fmt))


def seed_neighbour_query(model, ctx, reason: str):
    """``seed_neighbour_candidates``' kernel call as a ``TableQuery`` when ``model`` has
    precomputed text rows; ``NOTHING`` without a model or seeds; None otherwise (its ``gather``
    answers)."""
    if model is None:
        return NOTHING
    v = ctx.seed_vectors(SEEDS)   # (``seeds_key``'s seeds)
    if not len(v.items):
        return NOTHING
    if isinstance(model, TextNeighbours) and model.idx is not None:
        return model.query(None, reason, v)
    return None
