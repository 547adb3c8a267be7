"""A small MLP scorer in numpy, trained listwise with Adam, mini-batches and early stopping.

Why an MLP and not a factorisation machine: the ranker's inputs are a few dozen dense,
heterogeneous numbers (source scores and ranks, price ratios, engagement, time), not sparse
one-hot ids — the ids are already modelled by the candidate recommenders. An FM's strength is
pairwise interactions between sparse ids; what matters here are non-linear interactions of
dense signals ("a bought-together score counts when the cart is full", "price relative to
the session matters on detail pages"), which a two-hidden-layer ReLU network learns directly.
Scoring 150 candidates is two small matrix products (tens of microseconds).

Model: standardised x -> 32 ReLU -> 16 ReLU -> 1 score.
Loss: per query, softmax cross-entropy of the positives against every candidate of the pool
(ListNet-style top-one probability), each positive with a weight (1, or 1 / propensity of its
position for clicks on shown recommendations), plus L2. Adam (lr 3e-3), 32 queries a batch,
at most ``max_epochs``, stopped when the validation loss has not improved for ``patience``
epochs; the best epoch's weights are kept.
"""
from __future__ import annotations

import numpy as np


class MLP:
    def __init__(self, n_in: int, hidden=(32, 16), seed: int = 0):
        rng = np.random.default_rng(seed)
        sizes = [n_in, *hidden, 1]
        self.W = [(rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(b, np.float32) for b in sizes[1:]]
        self.mu = np.zeros(n_in, np.float32)
        self.sd = np.ones(n_in, np.float32)

    # -- inference ---------------------------------------------------------------------
    def score(self, X: np.ndarray) -> np.ndarray:
        h = (X - self.mu) / self.sd
        for W, b in zip(self.W[:-1], self.b[:-1]):
            h = np.maximum(h @ W + b, 0)
        return (h @ self.W[-1] + self.b[-1])[..., 0]

    # -- training --------------------------------------------------------------------------
    def _forward(self, X):
        acts = [X]
        h = X
        for W, b in zip(self.W[:-1], self.b[:-1]):
            h = np.maximum(h @ W + b, 0)
            acts.append(h)
        return (h @ self.W[-1] + self.b[-1])[..., 0], acts

    @staticmethod
    def _loss_grad(z, mask, y):
        """Listwise softmax CE. z, mask, y: (Q, P). Returns mean loss and dL/dz."""
        z = np.where(mask, z, -1e9)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z) * mask
        p = e / np.maximum(e.sum(axis=1, keepdims=True), 1e-12)
        wsum = y.sum(axis=1, keepdims=True)
        ok = (wsum[:, 0] > 0)
        loss = -(y * np.log(np.maximum(p, 1e-12))).sum(axis=1) / np.maximum(wsum[:, 0], 1e-12)
        grad = (p * wsum - y) / np.maximum(wsum, 1e-12)
        grad *= ok[:, None] * mask
        n = max(int(ok.sum()), 1)
        return float(loss[ok].sum() / n), grad / n

    def loss(self, X, mask, y) -> float:
        z = self.score(X)
        return self._loss_grad(z, mask, y)[0]

    def fit(self, X, mask, y, Xv, mv, yv, lr=3e-3, batch=32, max_epochs=30, patience=3, l2=1e-4, seed=0,
            time_budget_s: float | None = None) -> dict:
        """X: (Q, P, F) float32, mask (Q, P) bool, y (Q, P) positive weights; *v: validation."""
        import time
        t0 = time.perf_counter()
        flat = X[mask]
        self.mu = flat.mean(axis=0).astype(np.float32) if len(flat) else self.mu
        self.sd = (flat.std(axis=0) + 1e-3).astype(np.float32) if len(flat) else self.sd
        Xn = (X - self.mu) / self.sd
        Xvn = (Xv - self.mu) / self.sd
        params = self.W + self.b
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        step = 0
        rng = np.random.default_rng(seed)
        best = (np.inf, None, 0)
        history = []
        Q = len(X)
        for epoch in range(max_epochs):
            idx = rng.permutation(Q)
            tl = 0.0
            for s in range(0, Q, batch):
                q = idx[s:s + batch]
                z, acts = self._forward(Xn[q])
                lval, dz = self._loss_grad(z, mask[q], y[q])
                tl += lval * len(q)
                g = dz[..., None]                                    # (B, P, 1)
                grads_W, grads_b = [None] * len(self.W), [None] * len(self.b)
                for layer in range(len(self.W) - 1, -1, -1):
                    a = acts[layer]
                    grads_W[layer] = a.reshape(-1, a.shape[-1]).T @ g.reshape(-1, g.shape[-1]) + l2 * self.W[layer]
                    grads_b[layer] = g.sum(axis=(0, 1))
                    if layer:
                        g = (g @ self.W[layer].T) * (acts[layer] > 0)
                step += 1
                for k, (p, gr) in enumerate(zip(params, grads_W + grads_b)):
                    m[k] = 0.9 * m[k] + 0.1 * gr
                    v[k] = 0.999 * v[k] + 0.001 * gr * gr
                    mh = m[k] / (1 - 0.9 ** step)
                    vh = v[k] / (1 - 0.999 ** step)
                    p -= (lr * mh / (np.sqrt(vh) + 1e-8)).astype(p.dtype)
            zv, _ = self._forward(Xvn)
            vl = self._loss_grad(zv, mv, yv)[0] if len(Xv) else tl / max(Q, 1)
            history.append((round(tl / max(Q, 1), 5), round(vl, 5)))
            if vl < best[0] - 1e-5:
                best = (vl, ([w.copy() for w in self.W], [b.copy() for b in self.b]), epoch)
            elif epoch - best[2] >= patience:
                break
            if time_budget_s and time.perf_counter() - t0 > time_budget_s:
                break
        if best[1] is not None:
            self.W, self.b = best[1]
        return {"epochs": len(history), "best_epoch": best[2] + 1, "val_loss": round(float(best[0]), 5),
                "history": history}
