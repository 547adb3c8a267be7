"""Similar image: products that look alike, from image feature vectors (``kernels/images.py``).

The default embedder is classical (HSV colour histogram + DCT perceptual hash + gradient
orientation texture; no model weights). Anything implementing ``ImageEmbedder`` (e.g. a CNN)
can replace it with ``configure(embedder=...)``; vectors are cached under the embedder's
``name``, so two extractors never mix.

Image bytes come from a pluggable fetcher (``configure(fetcher=...)``). ``DefaultFetcher``
reads http(s) URLs with a short timeout and a size cap, refusing hosts that resolve to private,
loopback or link-local addresses (no SSRF into the operator's network), and local files only
below an explicitly configured ``local_root``. Products whose image cannot be fetched or
decoded are skipped (and not retried for ``RETRY_FAILED_S``).

Fetching is bounded per build (``BUDGET_S`` seconds, ``MAX_NEW`` new images, ``WORKERS``
threads): the rest is picked up by the next builds. Vectors are cached in memory per process
and, when a cache directory is known (``ds.model_dir`` if the dataset has one, else
``configure(cache_dir=...)`` or ``$FUNNELREC_IMAGE_CACHE``), on disk as one ``.npy`` per image.
Seeds: the current product, cart and session items. Reason: "looks like X". A build without
any image vector (its ``fit`` gives None: each build fits its own instance) answers nothing,
so the instance then says it is not ``applicable``: a slot skips it instead of asking an empty answer.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import ipaddress
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Protocol

import numpy as np

from ._common import Neighbours
from ._text import seed_neighbour_candidates
from .base import Recommender, seeds_key
from .kernels.images import ClassicalEmbedder, ImageDecodeError, ImageEmbedder, ImageIndex
from .registry import register

K = 30
BUDGET_S = 5.0
MAX_NEW = 500
WORKERS = 8
RETRY_FAILED_S = 3600.0
MAX_BYTES = 8 * 1024 * 1024
RESERVED_TLDS = {"example", "invalid", "test", "localhost", "local"}


class ImageFetcher(Protocol):
    def fetch(self, ref: str) -> bytes: ...


class FetchError(Exception):
    pass


class DefaultFetcher:
    """http(s) with ``timeout`` seconds and ``max_bytes``; local paths only under ``local_root``."""

    def __init__(self, timeout: float = 2.0, max_bytes: int = MAX_BYTES, local_root: str | Path | None = None,
                 allow_private: bool = False):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.local_root = Path(local_root).resolve() if local_root else None
        self.allow_private = allow_private
        self._hosts: dict[str, tuple[str, float]] = {}   # host -> (error or "", when checked)

    def fetch(self, ref: str) -> bytes:
        u = urllib.parse.urlsplit(ref)
        if u.scheme in ("http", "https"):
            return self._http(ref, u)
        if u.scheme in ("", "file"):
            return self._file(u.path if u.scheme == "file" else ref)
        raise FetchError(f"unsupported image reference {ref[:80]!r}")

    def _file(self, path: str) -> bytes:
        if self.local_root is None:
            raise FetchError("local image files are disabled (no local_root)")
        p = Path(path)
        p = (self.local_root / p).resolve() if not p.is_absolute() else p.resolve()
        if self.local_root != p and self.local_root not in p.parents:
            raise FetchError("image path outside local_root")
        if p.stat().st_size > self.max_bytes:
            raise FetchError("image too large")
        return p.read_bytes()

    def _check_host(self, host: str, port: int) -> None:
        """Resolve once per host and ``RETRY_FAILED_S``: a catalog's images share few hosts, and
        a host that does not resolve (or is private) must not cost a DNS timeout per image."""
        if host.rsplit(".", 1)[-1].lower() in RESERVED_TLDS or not host:
            raise FetchError(f"reserved host name {host!r} (RFC 2606/6761)")
        hit = self._hosts.get(host)
        if hit is not None and time.time() - hit[1] < RETRY_FAILED_S:
            if hit[0]:
                raise FetchError(hit[0])
            return
        error = ""
        try:
            infos = socket.getaddrinfo(host, port)
            for info in infos:
                ip = ipaddress.ip_address(info[4][0])
                if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
                    error = f"refusing non-public address {ip} for {host}"
                    break
        except OSError as e:
            error = f"cannot resolve {host}: {e}"
        self._hosts[host] = (error, time.time())
        if error:
            raise FetchError(error)

    def _http(self, ref: str, u) -> bytes:
        if not self.allow_private:
            self._check_host(u.hostname or "", u.port or (443 if u.scheme == "https" else 80))
        req = urllib.request.Request(ref, headers={"User-Agent": "funnelrec-image-features/1"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data = resp.read(self.max_bytes + 1)
        except Exception as e:  # network errors of every kind: skip the image
            raise FetchError(f"fetch failed: {e}") from e
        if len(data) > self.max_bytes:
            raise FetchError("image too large")
        return data


_config = {"fetcher": DefaultFetcher(), "embedder": ClassicalEmbedder(),
           "cache_dir": os.environ.get("FUNNELREC_IMAGE_CACHE") or None}
_memory: dict[tuple[str, str], np.ndarray | float] = {}   # vector, or the time a fetch failed
_memory_lock = threading.Lock()
MAX_MEMORY = 200_000


def configure(fetcher: ImageFetcher | None = None, embedder: ImageEmbedder | None = None,
              cache_dir: str | Path | None = None) -> None:
    """Process-wide: the image fetcher, the embedder, the on-disk cache directory."""
    if fetcher is not None:
        _config["fetcher"] = fetcher
    if embedder is not None:
        _config["embedder"] = embedder
    if cache_dir is not None:
        _config["cache_dir"] = str(cache_dir)


def clear_memory_cache() -> None:
    with _memory_lock:
        _memory.clear()


def _disk_path(cache_dir, embedder: ImageEmbedder, ref: str) -> Path | None:
    if not cache_dir:
        return None
    h = hashlib.sha1(f"{embedder.name}\n{ref}".encode()).hexdigest()
    return Path(cache_dir) / "image_features" / h[:2] / f"{h}.npy"


def image_vectors(refs: dict[int, str], embedder: ImageEmbedder, fetcher: ImageFetcher, cache_dir=None,
                  budget_s: float = BUDGET_S, max_new: int = MAX_NEW) -> dict[int, np.ndarray]:
    """item -> vector for the items whose image is cached or could be fetched and decoded now."""
    out: dict[int, np.ndarray] = {}
    todo: list[tuple[int, str]] = []
    now = time.time()
    for i, ref in refs.items():
        key = (embedder.name, ref)
        hit = _memory.get(key)
        if isinstance(hit, np.ndarray):
            out[i] = hit
            continue
        if isinstance(hit, float) and now - hit < RETRY_FAILED_S:
            continue
        path = _disk_path(cache_dir, embedder, ref)
        if path is not None and path.exists():
            try:
                v = np.load(path)
                out[i] = v
                with _memory_lock:
                    _memory[key] = v
                continue
            except (OSError, ValueError):
                pass
        todo.append((i, ref))
    todo = todo[:max_new]
    if not todo:
        return out
    check = getattr(fetcher, "_check_host", None)
    if check is not None and not getattr(fetcher, "allow_private", False):
        # resolve each host once, in parallel, within half the budget: a host that fails (or is
        # private) fails all its images at once, without a DNS timeout per image
        hosts = sorted({urllib.parse.urlsplit(ref).hostname or "" for _, ref in todo})
        bad_hosts: set[str] = set()
        ok_hosts: set[str] = set()
        hpool = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="image-dns")
        try:
            futs = {hpool.submit(check, h, 443): h for h in hosts}
            try:
                for fut in concurrent.futures.as_completed(futs, timeout=budget_s / 2):
                    (bad_hosts if fut.exception() is not None else ok_hosts).add(futs[fut])
            except concurrent.futures.TimeoutError:
                pass   # unresolved hosts wait for the next build
        finally:
            hpool.shutdown(wait=False, cancel_futures=True)
        for i, ref in todo:
            if (urllib.parse.urlsplit(ref).hostname or "") in bad_hosts:
                with _memory_lock:
                    _memory[(embedder.name, ref)] = time.time()
        todo = [(i, ref) for i, ref in todo if (urllib.parse.urlsplit(ref).hostname or "") in ok_hosts
                or urllib.parse.urlsplit(ref).scheme not in ("http", "https")]
        if not todo:
            return out

    def work(ref: str) -> np.ndarray:
        return np.asarray(embedder.embed(fetcher.fetch(ref)), dtype=np.float32)

    deadline = time.monotonic() + budget_s
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="image-fetch")
    try:
        futures = {pool.submit(work, ref): (i, ref) for i, ref in todo}
        try:
            for fut in concurrent.futures.as_completed(futures, timeout=max(deadline - time.monotonic(), 0.01)):
                i, ref = futures[fut]
                key = (embedder.name, ref)
                try:
                    v = fut.result()
                except (FetchError, ImageDecodeError, OSError, ValueError):
                    with _memory_lock:
                        _memory[key] = time.time()
                    continue
                out[i] = v
                with _memory_lock:
                    if len(_memory) < MAX_MEMORY:
                        _memory[key] = v
                path = _disk_path(cache_dir, embedder, ref)
                if path is not None:
                    try:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        tmp = path.with_name(path.name + ".tmp.npy")
                        np.save(tmp, v)
                        os.replace(tmp, path)
                    except OSError:
                        pass
        except concurrent.futures.TimeoutError:
            pass  # the rest waits for the next build
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return out


@register("similar_image", description="products that look alike (image features)")
class SimilarImage(Recommender):
    has_vectors = True   # whether this instance's ``fit`` found image vectors (the default: not fitted here)

    def fit(self, ds):
        model = self._fit(ds)
        self.has_vectors = model is not None
        return model

    def applicable(self, ctx):
        """Not when the fit found no image vectors (a shop without images, or none fetched
        yet): every answer would be empty, so a slot neither makes its key (the seeds as
        pairs) nor asks its answer (~7 µs a detail page); the blend of the others is the same."""
        return self.has_vectors

    def _fit(self, ds):
        refs = {i: ds.image[i] for i in range(ds.n_items) if ds.in_catalog[i] and ds.image[i]}
        if len(refs) < 2:
            return None
        embedder, fetcher = _config["embedder"], _config["fetcher"]
        cache_dir = getattr(ds, "model_dir", None) or _config["cache_dir"]
        vecs = image_vectors(refs, embedder, fetcher, cache_dir)
        if len(vecs) < 2:
            return None
        items = np.array(sorted(vecs), np.int64)
        index = ImageIndex([str(i) for i in items], np.stack([vecs[i] for i in items]))
        nidx, nsc = index.neighbors(K)
        # map rows of the index back to dataset items
        full_idx = np.full((ds.n_items, K), -1, np.int32)
        full_sc = np.zeros((ds.n_items, K), np.float32)
        mapped = np.where(nidx >= 0, items[np.maximum(nidx, 0)], -1)
        full_idx[items] = mapped
        full_sc[items] = np.where(nidx >= 0, np.maximum(nsc, 0), 0)
        return Neighbours(full_idx, full_sc)

    def cache_key(self, ctx):  # reads only the seed items; without vectors no answer to keep (nor asked)
        return seeds_key(ctx) if self.has_vectors else None

    def recommend(self, model, ds, ctx, k):
        return seed_neighbour_candidates(model, ds, ctx, k, "looks like")
