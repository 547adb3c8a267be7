"""similar_image with images drawn by Pillow, a local-file fetcher, skipping broken images."""
import io

import numpy as np
import pytest

pytest.importorskip("PIL")
from PIL import Image, ImageDraw  # noqa: E402

from server.recommenders import similar_image as si  # noqa: E402
from server.recommenders.base import Context  # noqa: E402
from tests.recommenders.helpers import ShopData, dataset, ids, product, recs  # noqa: E402


def draw(path, colour, shape, size=96):
    img = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(img)
    if shape == "square":
        d.rectangle([16, 16, size - 16, size - 16], fill=colour)
    else:
        for x in range(0, size, 12):
            d.rectangle([x, 0, x + 5, size], fill=colour)
    img.save(path)


class LocalFetcher:
    """Maps the product image URL's file name to a file in ``root`` (what a CDN would serve)."""

    def __init__(self, root):
        self.inner = si.DefaultFetcher(local_root=root)
        self.calls = 0

    def fetch(self, ref):
        self.calls += 1
        return self.inner.fetch(ref.rsplit("/", 1)[-1])


@pytest.fixture
def images(tmp_path):
    root = tmp_path / "img"
    root.mkdir()
    draw(root / "red1.png", (220, 20, 20), "square")
    draw(root / "red2.png", (200, 30, 30), "square", 140)
    draw(root / "blue1.png", (20, 40, 220), "stripes")
    draw(root / "blue2.png", (30, 50, 200), "stripes", 120)
    (root / "broken.png").write_bytes(b"\x89PNG not really")
    si.clear_memory_cache()
    yield root
    si.clear_memory_cache()
    si.configure(fetcher=si.DefaultFetcher(), cache_dir="")


def shop(tmp_path, names):
    return ShopData(tmp_path).products([product(n, image=f"https://cdn.example/{n}.png") for n in names])


def test_similar_images_and_broken_skipped(tmp_path, images):
    fetcher = LocalFetcher(images)
    si.configure(fetcher=fetcher, cache_dir=tmp_path / "cache")
    d = shop(tmp_path, ["red1", "red2", "blue1", "blue2", "broken", "missing"])
    ds = dataset(d)
    rec = si.SimilarImage()
    model = rec.fit(ds)
    out = recs(rec, model, ds, Context(product="red1", item=ds.item("red1")), k=3)
    assert out[0][0] == "red2" and out[0][2] == "looks like RED1"
    assert "broken" not in ids(out) and "missing" not in ids(out)
    assert ids(recs(rec, model, ds, Context(product="blue2", item=ds.item("blue2")), k=1)) == ["blue1"]
    # a product whose image failed has no neighbours
    assert len(rec.recommend(model, ds, Context(product="broken", item=ds.item("broken")), 3)) == 0
    # the vectors are cached on disk: a new process (empty memory) does not fetch again
    calls = fetcher.calls
    si.clear_memory_cache()
    rec.fit(ds)
    assert fetcher.calls == calls + 2      # only the two failures are retried
    d.close()


def test_local_files_need_a_root_and_stay_inside(tmp_path, images):
    f = si.DefaultFetcher()
    with pytest.raises(si.FetchError):
        f.fetch(str(images / "red1.png"))
    f = si.DefaultFetcher(local_root=images)
    assert f.fetch("red1.png")[:4] == b"\x89PNG"
    with pytest.raises(si.FetchError):
        f.fetch("../../etc/passwd")


def test_private_addresses_refused():
    f = si.DefaultFetcher()
    for url in ("http://127.0.0.1/x.png", "http://169.254.169.254/latest", "http://localhost:8000/a.png"):
        with pytest.raises(si.FetchError):
            f.fetch(url)
    with pytest.raises(si.FetchError):
        f.fetch("ftp://example.com/a.png")


def test_cold_start_and_no_images(tmp_path, images):
    si.configure(fetcher=LocalFetcher(images))
    d = ShopData(tmp_path)
    ds = dataset(d)
    rec = si.SimilarImage()
    assert rec.fit(ds) is None
    assert len(rec.recommend(None, ds, Context(), 3)) == 0
    d.products([product("a", image=None), product("b", image=None)])
    ds = dataset(d)
    assert rec.fit(ds) is None
    d.close()


class FakeCNN:
    """Any ImageEmbedder plugs in: here a 2-d 'embedding' of the mean colour."""
    name = "fake-cnn"
    dim = 2

    def embed(self, image_bytes):
        from server.recommenders.kernels.images import decode_rgb
        a = np.asarray(decode_rgb(image_bytes), dtype=np.float32).reshape(-1, 3).mean(axis=0)
        v = np.array([a[0], a[2]], np.float32)
        return v / np.linalg.norm(v)


def test_pluggable_embedder(tmp_path, images):
    si.configure(fetcher=LocalFetcher(images), embedder=FakeCNN())
    try:
        d = shop(tmp_path, ["red1", "red2", "blue1", "blue2"])
        ds = dataset(d)
        rec = si.SimilarImage()
        model = rec.fit(ds)
        assert ids(recs(rec, model, ds, Context(product="red1", item=ds.item("red1")), k=1)) == ["red2"]
        d.close()
    finally:
        si.configure(embedder=si.ClassicalEmbedder())


def test_not_applicable_without_vectors(tmp_path, images):
    """A fit without image vectors makes the instance not applicable (its answers would all be
    empty); a fit with vectors, or an instance not fitted here, is applicable; and a slot of a
    model without vectors gives what it gives when the source is asked and answers nothing."""
    from server import rules as R
    from server.placements import config as strategies
    from server.placements.blend import run_slot
    from server.recommenders.base import Recent
    from server.signals import VIEW
    si.configure(fetcher=LocalFetcher(images))
    assert si.SimilarImage().applicable(Context())      # (not fitted here: as before)
    d = shop(tmp_path, ["a", "b", "c"])   # no such files: no vectors
    ds = dataset(d)
    rec = si.SimilarImage()
    assert rec.fit(ds) is None and not rec.applicable(Context(product="a", item=ds.item("a")))
    assert rec.cache_key(Context(product="a", item=ds.item("a"))) is None
    d.close()
    (tmp_path / "2").mkdir()
    (tmp_path / "3").mkdir()
    d = shop(tmp_path / "2", ["red1", "red2", "blue1", "blue2"])
    ds = dataset(d)
    rec = si.SimilarImage()
    assert rec.fit(ds) is not None and rec.applicable(Context(product="red1", item=ds.item("red1")))
    d.close()
    # the slot's answer without the source equals the one with it asked (an empty answer)
    d = ShopData(tmp_path / "3").products([product(n, "mug " + n) for n in "abcdef"])
    m = d.model()
    assert m.fitted["similar_image"] is None and not m.recommenders["similar_image"].applicable(Context())
    strat = strategies.effective(None)["detail_similar"][0]
    rules = R.merge(strat.get("rules"))
    for p in "abc":
        ctx = Context(product=p, item=m.ds.item(p), recent=[Recent("d", m.ds.item("d"), VIEW, 0, 1.0, True)])
        got = run_slot(m, ctx, strat, 4, rules, set())
        assert len(got) == 4
        m.recommenders["similar_image"].has_vectors = True   # asked, answering nothing
        m.clear_caches()
        ctx.answers = None
        assert run_slot(m, ctx, strat, 4, rules, set()) == got
        m.recommenders["similar_image"].has_vectors = False
    d.close()
