"""Image feature vectors behind one interface, with a classical extractor by default.

``ImageEmbedder`` is the plug point: anything with a ``name``, a ``dim`` and
``embed(image_bytes) -> np.ndarray`` (1-D float32, L2-normalised) can be used, e.g. a CNN
embedder later (``name`` goes into the feature cache key, so changing the embedder never mixes
vectors from two extractors).

``ClassicalEmbedder`` (no model weights, ~1 ms an image) concatenates three blocks, each
L2-normalised and weighted, then renormalises:

- colour: an HSV histogram, 8 hue × 3 saturation × 3 value bins, over a 64×64 thumbnail;
  near-grey pixels (low saturation) get their own 3 value bins instead of a noisy hue;
- shape: a perceptual hash (pHash): the 8×8 lowest DCT frequencies of the 32×32 grey image
  (DC dropped), each bit = above the median, as ±1;
- texture: a histogram of gradient orientations (8 bins, magnitude-weighted) in each cell of a
  2×2 grid of the 64×64 grey image.

Decoding uses Pillow. Undecodable bytes raise ``ImageDecodeError``; callers skip that product.
"""
from __future__ import annotations

import io
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .topk import topk_1d, topk_rows


class ImageDecodeError(ValueError):
    pass


@runtime_checkable
class ImageEmbedder(Protocol):
    name: str
    dim: int

    def embed(self, image_bytes: bytes) -> np.ndarray: ...


def _l2(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def decode_rgb(image_bytes: bytes, max_pixels: int = 40_000_000):
    """Bytes → a Pillow RGB image (first frame), or ``ImageDecodeError``."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as e:  # pragma: no cover - Pillow is a dependency
        raise ImageDecodeError("Pillow is not installed: pip install pillow") from e
    if not image_bytes:
        raise ImageDecodeError("empty image")
    try:
        img = Image.open(io.BytesIO(image_bytes))
        if img.width * img.height > max_pixels:
            raise ImageDecodeError(f"image too large: {img.width}x{img.height}")
        img.draft("RGB", (256, 256))  # fast JPEG downscale while decoding
        img = img.convert("RGB")
        img.load()
        return img
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageDecodeError(f"cannot decode image: {e}") from e


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT32 = _dct_matrix(32)


def hsv_histogram(rgb: np.ndarray, h_bins: int = 8, s_bins: int = 3, v_bins: int = 3, grey_sat: float = 0.12) -> np.ndarray:
    """``rgb`` uint8 (H, W, 3) → normalised histogram of length h·s·v + v (grey bins)."""
    x = rgb.reshape(-1, 3).astype(np.float64) / 255.0
    mx = x.max(axis=1)
    mn = x.min(axis=1)
    delta = mx - mn
    v = mx
    s = np.divide(delta, mx, out=np.zeros_like(mx), where=mx > 0)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    h = np.zeros_like(mx)
    nz = delta > 0
    rm = nz & (mx == r)
    gm = nz & (mx == g) & ~rm
    bm = nz & ~rm & ~gm
    h[rm] = ((g[rm] - b[rm]) / delta[rm]) % 6
    h[gm] = (b[gm] - r[gm]) / delta[gm] + 2
    h[bm] = (r[bm] - g[bm]) / delta[bm] + 4
    h = h / 6.0
    vi = np.minimum((v * v_bins).astype(int), v_bins - 1)
    grey = s < grey_sat
    hi = np.minimum((h * h_bins).astype(int), h_bins - 1)
    si = np.minimum(((s - grey_sat) / (1 - grey_sat) * s_bins).astype(int), s_bins - 1)
    si = np.maximum(si, 0)
    colour_idx = (hi * s_bins + si) * v_bins + vi
    idx = np.where(grey, h_bins * s_bins * v_bins + vi, colour_idx)
    hist = np.bincount(idx, minlength=h_bins * s_bins * v_bins + v_bins).astype(np.float64)
    return hist / max(hist.sum(), 1.0)


def phash_bits(grey32: np.ndarray) -> np.ndarray:
    """32×32 grey (float) → 63 ±1 values: low DCT frequencies above/below their median."""
    d = _DCT32 @ grey32 @ _DCT32.T
    low = d[:8, :8].ravel()[1:]
    med = np.median(low)
    return np.where(low > med, 1.0, -1.0)


def gradient_orientation_histogram(grey: np.ndarray, bins: int = 8, grid: int = 2) -> np.ndarray:
    gy, gx = np.gradient(grey)
    mag = np.hypot(gx, gy)
    ang = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned orientation
    bi = np.minimum((ang / np.pi * bins).astype(int), bins - 1)
    hh, ww = grey.shape
    out = []
    for cy in range(grid):
        for cx in range(grid):
            sl = (slice(cy * hh // grid, (cy + 1) * hh // grid), slice(cx * ww // grid, (cx + 1) * ww // grid))
            out.append(np.bincount(bi[sl].ravel(), weights=mag[sl].ravel(), minlength=bins))
    h = np.concatenate(out)
    return h / max(h.sum(), 1e-12)


class ClassicalEmbedder:
    """Colour histogram + perceptual hash + gradient-orientation texture (see module doc)."""

    name = "classical-v1"

    def __init__(self, colour_weight: float = 0.5, phash_weight: float = 0.25, texture_weight: float = 0.25):
        self.weights = (colour_weight, phash_weight, texture_weight)
        self.dim = (8 * 3 * 3 + 3) + 63 + 8 * 4

    def embed(self, image_bytes: bytes) -> np.ndarray:
        img = decode_rgb(image_bytes)          # ImageDecodeError also when Pillow is missing
        from PIL import Image
        small = np.asarray(img.resize((64, 64), Image.BILINEAR), dtype=np.uint8)
        grey64 = np.asarray(img.convert("L").resize((64, 64), Image.BILINEAR), dtype=np.float64) / 255.0
        grey32 = np.asarray(img.convert("L").resize((32, 32), Image.BILINEAR), dtype=np.float64) / 255.0
        blocks = (hsv_histogram(small), phash_bits(grey32), gradient_orientation_histogram(grey64))
        vec = np.concatenate([np.sqrt(w) * _l2(b) for w, b in zip(self.weights, blocks)])
        return _l2(vec).astype(np.float32)


def phash_hex(image_bytes: bytes) -> str:
    """The 64-bit pHash as 16 hex digits (for dedup/debug; not used by the vector index)."""
    img = decode_rgb(image_bytes)
    from PIL import Image
    grey32 = np.asarray(img.convert("L").resize((32, 32), Image.BILINEAR), dtype=np.float64)
    d = _DCT32 @ grey32 @ _DCT32.T
    low = d[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


class ImageIndex:
    """Product ids and their unit vectors; cosine top-k."""

    def __init__(self, ids: Sequence[str], vectors: np.ndarray):
        self.ids = list(ids)
        self.pos = {p: i for i, p in enumerate(self.ids)}
        V = np.asarray(vectors, dtype=np.float32).reshape(len(self.ids), -1) if len(self.ids) else np.zeros((0, 0), np.float32)
        norms = np.linalg.norm(V, axis=1, keepdims=True) if V.size else np.ones((0, 1))
        self.vectors = np.divide(V, norms, out=np.zeros_like(V), where=norms > 0)

    def __len__(self) -> int:
        return len(self.ids)

    def similar(self, product_id: str, k: int = 10, min_score: float = 0.0) -> list[tuple[str, float]]:
        i = self.pos.get(product_id)
        if i is None:
            return []
        return self.similar_to_vector(self.vectors[i], k, exclude=[i], min_score=min_score)

    def similar_to_vector(self, vec: np.ndarray, k: int = 10, exclude: Sequence[int] = (), min_score: float = 0.0) -> list[tuple[str, float]]:
        if not self.ids:
            return []
        s = self.vectors @ np.asarray(vec, dtype=np.float32)
        s = np.where(s > min_score, s, -np.inf)
        idx, sc = topk_1d(s, k, np.asarray(list(exclude), dtype=np.int64))
        return [(self.ids[j], float(v)) for j, v in zip(idx, sc)]

    def neighbors(self, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """All items' top-k (dense: fine up to tens of thousands of images, done in blocks)."""
        n = len(self.ids)
        out_i = np.full((n, k), -1, dtype=np.int64)
        out_s = np.zeros((n, k), dtype=np.float32)
        step = max(1, (1 << 23) // max(n, 1))
        for a in range(0, n, step):
            b = min(n, a + step)
            blk = self.vectors[a:b] @ self.vectors.T
            blk[np.arange(b - a), np.arange(a, b)] = -np.inf
            i, s = topk_rows(blk, k)
            out_i[a:b] = i
            out_s[a:b] = np.where(i >= 0, s, 0)
        return out_i, out_s
