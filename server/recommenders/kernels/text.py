"""TF-IDF over product text with word tokens and in-word character n-grams.

Korean is written with spaces between *eojeol* (a word plus its particles), so "가디건을" and
"가디건" are different words. Character 2- and 3-grams inside each word ("가디", "디건", "가디건")
match them anyway, with no morphological analyser; the same n-grams make misspelt Latin words
("cardigna") still share most of their grams with the right one.

The features are two blocks, each TF-IDF weighted and L2-normalised on its own:

- words: lower-cased NFKC tokens of letters/digits (``\\w+``), one character or more;
- grams: character n-grams (``ngram_range``, default 2-3) taken inside each word; a word
  shorter than the smallest n counts as its own gram.

A row is ``sqrt(word_weight) * words ⊕ sqrt(1 - word_weight) * grams``, renormalised, so the
cosine of two rows is the weighted mean of the two blocks' cosines when both are non-empty.
Term frequency is sublinear (``1 + log tf``); idf is smoothed (``log((1 + n) / (1 + df)) + 1``).
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import Iterable, Sequence

import numpy as np
from scipy import sparse

from .topk import cosine_topk_all, topk_1d

_WORD = re.compile(r"\w+", re.UNICODE)


def normalize(text: str) -> str:
    """NFKC (full-width → ASCII, composed Hangul) and case-folded."""
    return unicodedata.normalize("NFKC", text or "").casefold()


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(normalize(text)) if w.replace("_", "")]


def char_ngrams(word: str, lo: int = 2, hi: int = 3) -> list[str]:
    """Character n-grams of one word, ``lo <= n <= hi``; the word itself when shorter than ``lo``."""
    if len(word) < lo:
        return [word]
    out = []
    for n in range(lo, hi + 1):
        out.extend(word[i:i + n] for i in range(len(word) - n + 1))
    return out


def tokens(text: str, lo: int = 2, hi: int = 3) -> tuple[list[str], list[str]]:
    """(word tokens, character n-gram tokens) of a text."""
    ws = words(text)
    grams: list[str] = []
    for w in ws:
        grams.extend(char_ngrams(w, lo, hi))
    return ws, grams


class TfidfIndex:
    """Fit on item documents; then item neighbours, and query → item scores.

    >>> ix = TfidfIndex().fit(["여성 니트 가디건", "남성 면 티셔츠"])
    >>> ix.query("가디건을")[0].tolist()
    [0]
    """

    def __init__(self, ngram_range: tuple[int, int] = (2, 3), word_weight: float = 0.5,
                 min_df: int = 1, max_df: float = 1.0, max_features: int | None = 200_000):
        if not 0.0 <= word_weight <= 1.0:
            raise ValueError("word_weight must be within [0, 1]")
        self.ngram_range = ngram_range
        self.word_weight = word_weight
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.vocab: dict[str, int] = {}       # "w:<word>" / "g:<gram>" → column
        self.idf = np.empty(0)
        self.is_word = np.empty(0, dtype=bool)
        self.matrix = sparse.csr_matrix((0, 0))
        self._csc: sparse.csc_matrix | None = None   # column access for fast query scoring

    # -- fitting -------------------------------------------------------------------------------
    def _doc_terms(self, text: str) -> Counter:
        ws, grams = tokens(text, *self.ngram_range)
        c: Counter = Counter("w:" + w for w in ws)
        c.update("g:" + g for g in grams)
        return c

    def fit(self, docs: Sequence[str]) -> "TfidfIndex":
        counts = [self._doc_terms(d) for d in docs]
        n = len(counts)
        df: Counter = Counter()
        for c in counts:
            df.update(c.keys())
        max_df = self.max_df * n if isinstance(self.max_df, float) else self.max_df
        terms = [t for t, d in df.items() if d >= self.min_df and (d <= max_df or n <= 1)]
        if self.max_features is not None and len(terms) > self.max_features:
            terms.sort(key=lambda t: (-df[t], t))
            terms = terms[: self.max_features]
        terms.sort()
        self.vocab = {t: i for i, t in enumerate(terms)}
        dfa = np.array([df[t] for t in terms], dtype=np.float64)
        self.idf = np.log((1.0 + n) / (1.0 + dfa)) + 1.0
        self.is_word = np.array([t.startswith("w:") for t in terms], dtype=bool)
        self.matrix = self._vectorize(counts)
        self._csc = self.matrix.tocsc()   # built now, not on the first request
        return self

    def _vectorize(self, counts: Iterable[Counter]) -> sparse.csr_matrix:
        indptr, indices, data = [0], [], []
        for c in counts:
            for t, tf in c.items():
                j = self.vocab.get(t)
                if j is not None:
                    indices.append(j)
                    data.append((1.0 + math.log(tf)) * self.idf[j])
            indptr.append(len(indices))
        X = sparse.csr_matrix((np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int32),
                               np.asarray(indptr, dtype=np.int64)), shape=(len(indptr) - 1, len(self.vocab)))
        return self._normalize_blocks(X)

    def _normalize_blocks(self, X: sparse.csr_matrix) -> sparse.csr_matrix:
        if X.shape[0] == 0 or X.nnz == 0:
            return X.astype(np.float32)
        X = X.tocsr()
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        isw = self.is_word[X.indices]
        sq = X.data ** 2
        wn = np.sqrt(np.bincount(rows[isw], weights=sq[isw], minlength=X.shape[0]))
        gn = np.sqrt(np.bincount(rows[~isw], weights=sq[~isw], minlength=X.shape[0]))
        scale = np.where(isw, math.sqrt(self.word_weight) / np.maximum(wn[rows], 1e-12),
                         math.sqrt(1.0 - self.word_weight) / np.maximum(gn[rows], 1e-12))
        X = X.copy()
        X.data = X.data * scale
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        X = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ X
        X = X.tocsr().astype(np.float32)
        X.eliminate_zeros()
        return X

    def pruned(self, max_df: float) -> "TfidfIndex":
        """A copy without the terms in more than ``max_df`` (a share) of the items, computed from
        this fitted index (no second tokenisation). Rows are exactly what ``fit`` with that
        ``max_df`` gives: idf does not change and each block is renormalised."""
        n = self.n_items
        df = np.bincount(self.matrix.indices, minlength=len(self.vocab))
        keep = (df <= max_df * n) if n > 1 else np.ones(len(self.vocab), bool)
        cols = np.flatnonzero(keep)
        remap = np.full(len(self.vocab), -1, np.int64)
        remap[cols] = np.arange(len(cols))
        new = TfidfIndex(self.ngram_range, self.word_weight, self.min_df, max_df, self.max_features)
        new.vocab = {t: int(remap[j]) for t, j in self.vocab.items() if keep[j]}
        new.idf = self.idf[cols]
        new.is_word = self.is_word[cols]
        new.matrix = new._normalize_blocks(self.matrix[:, cols].astype(np.float64).tocsr())
        new._csc = new.matrix.tocsc()
        return new

    # -- using ---------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return self.matrix.shape[0]

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Vectors for new texts in the fitted vocabulary (unknown terms are ignored)."""
        return self._vectorize(self._doc_terms(t) for t in texts)

    def query_vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """A query's (term columns, unit weights) without building a sparse matrix (fast path)."""
        c = self._doc_terms(text)
        cols, vals, isw = [], [], []
        vocab, idf = self.vocab, self.idf
        for t, tf in c.items():
            j = vocab.get(t)
            if j is not None:
                cols.append(j)
                vals.append((1.0 + math.log(tf)) * idf[j])
                isw.append(t[0] == "w")
        if not cols:
            return np.zeros(0, np.int64), np.zeros(0)
        cols_a, v, w = np.array(cols, np.int64), np.array(vals), np.array(isw, bool)
        wn, gn = math.sqrt(float((v[w] ** 2).sum())), math.sqrt(float((v[~w] ** 2).sum()))
        v = np.where(w, math.sqrt(self.word_weight) * v / max(wn, 1e-12),
                     math.sqrt(1.0 - self.word_weight) * v / max(gn, 1e-12))
        return cols_a, v / max(float(np.linalg.norm(v)), 1e-12)

    def query_scores(self, text: str) -> np.ndarray:
        """Cosine of a query against every item (dense, length ``n_items``)."""
        if self.n_items == 0:
            return np.zeros(0)
        cols, v = self.query_vector(text)
        return self.vector_scores(cols, v)

    def vector_scores(self, cols: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Cosine of a sparse unit vector (term columns, weights) against every item, by
        gathering the matrix columns of its terms (no sparse matrix product)."""
        cols = np.asarray(cols, np.int64)
        if not len(cols) or self.n_items == 0:
            return np.zeros(self.n_items)
        if self._csc is None:
            self._csc = self.matrix.tocsc()
        X = self._csc
        starts, ends = X.indptr[cols], X.indptr[cols + 1]
        lens = ends - starts
        if lens.sum() == 0:
            return np.zeros(self.n_items)
        idx = np.repeat(ends - lens.cumsum(), lens) + np.arange(lens.sum())
        weights = X.data[idx] * np.repeat(v, lens)
        return np.bincount(X.indices[idx], weights=weights, minlength=self.n_items)

    def query(self, text: str, k: int = 10, min_score: float = 1e-9,
              exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items for a query: (item indices, cosine scores), best first."""
        s = self.query_scores(text)
        if s.size == 0:
            return topk_1d(s, k)
        s = np.where(s >= min_score, s, -np.inf)
        return topk_1d(s, k, exclude)

    def neighbors(self, k: int = 20, min_score: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
        """Each item's ``k`` nearest other items by cosine: ``(n, k)`` indices (-1 pad) and scores."""
        return cosine_topk_all(self.matrix, k, min_score=min_score)

    def similar_to_vector(self, vec: sparse.spmatrix | np.ndarray, k: int = 10,
                          exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items for an arbitrary vector in the item space (e.g. a mean of item rows)."""
        if self.n_items == 0:
            return topk_1d(np.zeros(0), k)
        v = vec.T if sparse.issparse(vec) else np.asarray(vec).reshape(-1, 1)
        s = self.matrix @ v
        s = np.asarray(s.toarray() if sparse.issparse(s) else s).ravel()
        return topk_1d(np.where(s > 1e-9, s, -np.inf), k, exclude)
