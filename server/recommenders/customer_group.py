"""Customer group: what distinguishes this visitor's group — their RFM tier (VIP, heavy,
normal, new, lapsed) and their behavioural cluster — from everybody else.

Fit (``kernels/groups.py``):
  - RFM per person from orders: recency and tenure against the tenant clock, frequency = orders,
    monetary = Σ quantity x catalog price; tiers by the documented thresholds of
    ``RFMThresholds`` (lapsed > 180 days; VIP = 3+ orders and top 5 % spend; heavy = 2+ orders
    and top 20 % frequency or spend; new = first order within 30 days; else normal).
  - Behavioural clusters: k-means on each person's share of activity per top-level category
    (square-root shares), k by the best silhouette (1-8), seeded; fitted on at most 5 000 persons,
    all assigned.
  - For both groupings, each group's distinctive products: smoothed lift over everyone,
    ranked by ``p(i|g)·log(lift)`` (top 50 per group), from row-normalised feedback so one
    heavy buyer does not define a group.
Request: a person with orders has their tier, anyone else is "new" (a merchant-supplied profile
``segment`` naming a tier, e.g. "VIP", overrides it); the cluster is the
person's, or for a visitor unknown to the model the nearest centre to their live session's
category shares. Scores = half tier, half cluster (each scaled to its best); a visitor with no
cluster gets the tier alone, so even a first page view of a brand-new visitor gets the "new
customers" picks. Reasons: "popular with our VIP customers" / "favoured by shoppers who love
Kitchen".
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from ..signals import PURCHASE
from .base import Candidates, Recommender
from .kernels.groups import MAX_PAIRWISE, TIERS, assign, choose_k, group_lift, items_centre, rfm_tiers, share_vectors
from .kernels.groups import nearest_centre as nearest_kernel
from .registry import register

TOP = 50
MAX_ANSWERS = 32   # answers kept per group (tier, cluster) of a model: one per k, one or two in practice
NEW = TIERS.index("new")
MAX_FIT_PERSONS = 5_000
MAX_CATEGORIES = 50
TIER_WORDS = {"vip": "our VIP customers", "heavy": "our frequent customers", "normal": "our regular customers",
              "new": "new customers", "lapsed": "returning customers"}


def _top_per_group(score: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for row in score:
        pos = np.flatnonzero(row > 0)
        if len(pos) > TOP:
            pos = pos[np.argpartition(-row[pos], TOP - 1)[:TOP]]
        pos = pos[np.lexsort((pos, -row[pos]))]
        out.append((pos.astype(np.int32), row[pos].astype(np.float32)))
    return out


def category_buckets(ds, max_buckets: int = MAX_CATEGORIES) -> tuple[list[str], np.ndarray]:
    """The category level clusters are described in: the shallowest level of the category
    paths with at least 3 distinct values, its ``max_buckets`` most common values (others and
    uncategorised items: -1). Returns (bucket names, bucket per item)."""
    paths = [c.split(" > ") if c else [] for c in ds.category]
    depth = max((len(p) for p in paths), default=0)
    for level in range(1, depth + 1):
        names = [" > ".join(p[:level]) if p else "" for p in paths]
        distinct = {n for n in names if n}
        if len(distinct) >= 3 or level == depth:
            break
    else:
        return [], np.full(ds.n_items, -1, np.int64)
    counts: dict[str, int] = {}
    for n in names:
        if n:
            counts[n] = counts.get(n, 0) + 1
    cats = sorted(sorted(counts, key=lambda n: (-counts[n], n))[:max_buckets])
    pos = {c: j for j, c in enumerate(cats)}
    return cats, np.array([pos.get(n, -1) for n in names], np.int64)


class GroupModel:
    def __init__(self, ds):
        n_p, n_i = ds.R.shape
        R = sparse.csr_matrix(ds.R, dtype=np.float64)
        rs = np.asarray(R.sum(axis=1)).ravel()
        Rn = sparse.csr_matrix(sparse.diags(1.0 / np.maximum(rs, 1e-12)) @ R)

        # -- RFM tiers --------------------------------------------------------------------
        self.tier = np.full(n_p, TIERS.index("new"), np.int8)
        bp = ds.basket_person.astype(np.int64)
        if len(bp):
            freq = np.bincount(bp, minlength=n_p)
            last = np.full(n_p, np.iinfo(np.int64).min)
            first = np.full(n_p, np.iinfo(np.int64).max)
            np.maximum.at(last, bp, ds.basket_ts)
            np.minimum.at(first, bp, ds.basket_ts)
            m = ds.fb_kind == PURCHASE
            price = np.nan_to_num(ds.price[ds.fb_item[m]], nan=0.0)
            money = np.bincount(ds.fb_person[m], weights=ds.fb_qty[m] * price, minlength=n_p)
            buyers = np.flatnonzero(freq > 0)
            names = rfm_tiers(last[buyers], first[buyers], freq[buyers], money[buyers], ds.clock_ms)
            self.tier[buyers] = [TIERS.index(t) for t in names]
        tier_labels = np.where(rs > 0, self.tier, -1)
        self.tier_top = _top_per_group(group_lift(Rn, tier_labels, len(TIERS))[0])

        # -- behavioural clusters -----------------------------------------------------------
        self.cats, self.item_cat = category_buckets(ds)
        self.cluster = np.full(n_p, -1, np.int64)
        self.centres = np.zeros((0, len(self.cats)))
        self.cluster_top: list[tuple[np.ndarray, np.ndarray]] = []
        self.cluster_name: list[str] = []
        if len(self.cats) >= 2 and R.nnz:
            has = self.item_cat >= 0
            M = sparse.csr_matrix((np.ones(int(has.sum())), (np.flatnonzero(has), self.item_cat[has])),
                                  shape=(n_i, len(self.cats)))
            C = sparse.csr_matrix(R @ M)
            active = np.flatnonzero(np.asarray(C.sum(axis=1)).ravel() > 0)
            if len(active) >= 8:
                rng = np.random.default_rng(0)
                fit_rows = np.sort(rng.choice(active, MAX_FIT_PERSONS, replace=False)) if len(active) > MAX_FIT_PERSONS else active
                k, _, centres = choose_k(share_vectors(C[fit_rows]), k_max=8, seed=0)
                self.centres = centres
                for a in range(0, len(active), 50_000):
                    rows = active[a:a + 50_000]
                    self.cluster[rows] = assign(share_vectors(C[rows]), centres)
                self.cluster_top = _top_per_group(group_lift(Rn, self.cluster, k)[0])
                self.cluster_name = [self.cats[int(np.argmax(c ** 2))].split(" > ")[-1] for c in centres]

    def blend(self, tier: int, cluster: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Half tier, half cluster (each scaled to its best), best first, with the reason of
        the part that gave most; computed once per (tier, cluster) for the model's life (a
        few dozen combinations, each a function of the fitted model alone)."""
        memo = self.__dict__.setdefault("_blend", {})
        hit = memo.get((tier, cluster))
        if hit is not None:
            return hit
        parts = [(self.tier_top[tier], f"popular with {TIER_WORDS[TIERS[tier]]}")]
        if cluster >= 0:
            parts.append((self.cluster_top[cluster], f"favoured by shoppers who love {self.cluster_name[cluster]}"))
        scores: dict[int, float] = {}
        reason: dict[int, tuple[float, str]] = {}
        weight = 1.0 / len(parts)
        for (items, sc), text in parts:
            if not len(items):
                continue
            top = float(sc[0])
            for i, s in zip(items.tolist(), (sc / top).tolist()):
                scores[i] = scores.get(i, 0.0) + weight * s
                if s > reason.get(i, (-1.0, ""))[0]:
                    reason[i] = (s, text)
        c = Candidates.from_pairs(scores, len(scores), "")
        hit = memo[(tier, cluster)] = (c.items, c.scores, [reason[i][1] for i in c.items.tolist()])
        return hit

    def answer(self, tier: int, cluster: int, k: int) -> Candidates:
        """``blend(tier, cluster)``'s first ``k`` as Candidates, made once per (tier, cluster,
        k) for the model's life (a function of the fitted model alone; answers are shared and
        never changed, as the model's answer cache shares them). Up to ``MAX_ANSWERS`` of them
        per group, then made per call (a request's count is bounded, but not to a few values)."""
        answers = self.group_answers(tier, cluster)
        c = answers.get(k)
        if c is None:
            items, scores, reasons = self.blend(tier, cluster)
            c = Candidates(items[:k], scores[:k], reasons[:k])
            if len(answers) < MAX_ANSWERS:
                answers[k] = c
        return c

    def group_answers(self, tier: int, cluster: int) -> dict:
        """The (tier, cluster)'s answers made so far (``answer``: k -> Candidates), one dict per
        group for the model's life."""
        memo = self.__dict__.get("_answers")
        if memo is None:
            memo = self.__dict__.setdefault("_answers", {})
        got = memo.get((tier, cluster))
        if got is None:
            got = memo.setdefault((tier, cluster), {})
        return got

    def person_answers(self) -> list:
        """Per person of the model, their group's answers (``group_answers``) when the model
        tells both their tier and their cluster (one of their own, or no clusters at all), else
        None (the cluster is then the nearest centre to the request's session), made on first
        use: a known person's answer read with two look-ups."""
        got = self.__dict__.get("_person_answers")
        if got is None:
            tiers, clusters = self.groups()
            nearest = len(self.centres) > 0
            got = [None if c < 0 and nearest else self.group_answers(t, c) for t, c in zip(tiers, clusters)]
            got = self.__dict__.setdefault("_person_answers", got)
        return got

    def groups(self) -> tuple[list[int], list[int]]:
        """``tier`` and ``cluster`` as lists (made on first use): a person's read without a
        numpy scalar each."""
        g = self.__dict__.get("_groups")
        if g is None:
            g = self.__dict__.setdefault("_groups", (self.tier.tolist(), self.cluster.tolist()))
        return g

    def visitor_cluster(self, ctx) -> int:
        p = ctx.person
        clusters = self.groups()[1]
        if 0 <= p < len(clusters) and clusters[p] >= 0:
            return clusters[p]
        if not len(self.centres):
            return -1
        arrays = self.__dict__.get("_kernel_arrays")   # (contiguous, as the kernels take them)
        if arrays is None:
            arrays = self.__dict__.setdefault("_kernel_arrays", (np.ascontiguousarray(self.centres, np.float64),
                                                                  np.ascontiguousarray(self.item_cat, np.int64)))
        centres, item_cat = arrays
        if centres.shape[1] <= MAX_PAIRWISE:
            v = ctx.session_vectors(10)
            w = v.weights64
            if w is not None:   # (a walked view: its arrays, no pairs; ``nearest_centre`` in one call)
                return items_centre(v.items, w, item_cat, centres)
        return nearest_centre(self.category_of(), ctx._session(10, False), centres)

    def category_of(self) -> list[int]:
        """``item_cat`` as a list (made on first use): a visitor's few items looked up without
        a numpy call each."""
        cat_of = self.__dict__.get("_cat_of")
        if cat_of is None:
            cat_of = self.__dict__.setdefault("_cat_of", self.item_cat.tolist())
        return cat_of


def nearest_centre(cat_of: list[int], items, centres: np.ndarray) -> int:
    """The cluster of a visitor the model does not know: the nearest centre to the category
    shares of their (item, weight) session items (weights > 0), -1 without any categorised
    item: what ``assign(share_vectors(share[None, :]), centres)`` gives, in one kernel call
    (``kernels/groups.nearest_centre``; numpy itself past ``MAX_PAIRWISE`` categories)."""
    share = [0.0] * centres.shape[1]
    n = len(cat_of)
    for i, w in items:
        if 0 <= i < n:
            c = cat_of[i]
            if c >= 0:
                share[c] += w     # (float64 additions, as numpy's in place)
    if not max(share, default=0.0) > 0:   # (the shares are >= 0: their sum is > 0 when one is)
        return -1
    if len(share) > MAX_PAIRWISE:
        return int(assign(share_vectors(np.array(share)[None, :]), centres)[0])
    return int(nearest_kernel(np.array(share), centres))


@register("customer_group", description="what distinguishes this visitor's customer group (RFM tier, behaviour cluster)")
class CustomerGroup(Recommender):
    def fit(self, ds):
        if not ds.n_items or ds.R.nnz == 0:
            return None
        return GroupModel(ds)

    def recommend(self, model, ds, ctx, k):
        if model is None:
            return Candidates.empty()
        p = ctx.person
        profile = ctx.profile
        if not (profile and profile.get("segment")):   # (most requests: the person's own groups)
            people = model.person_answers()
            if 0 <= p < len(people):
                answers = people[p]
                if answers is not None:
                    c = answers.get(k)
                    if c is not None:
                        return c
        tiers = model.groups()[0]
        tier = tiers[p] if 0 <= p < len(tiers) else NEW
        segment = profile.get("segment") if profile else None
        if segment:
            segment = str(segment).strip().lower()
            if segment in TIERS:          # the merchant's own segment of this user wins
                tier = TIERS.index(segment)
        return model.answer(tier, model.visitor_cluster(ctx), k)
