"""Classical image embedder on images drawn in the test with Pillow."""
import io

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image, ImageDraw  # noqa: E402

from server.recommenders.kernels.images import (ClassicalEmbedder, ImageDecodeError, ImageEmbedder, ImageIndex,
                                                phash_hex)


def png(colour, shape="square", size=96, bg=(255, 255, 255), fmt="PNG"):
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    if shape == "square":
        d.rectangle([16, 16, size - 16, size - 16], fill=colour)
    elif shape == "stripes":
        for x in range(0, size, 12):
            d.rectangle([x, 0, x + 5, size], fill=colour)
    elif shape == "circle":
        d.ellipse([12, 12, size - 12, size - 12], fill=colour)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def test_protocol_and_unit_vectors():
    e = ClassicalEmbedder()
    assert isinstance(e, ImageEmbedder)
    v = e.embed(png((200, 0, 0)))
    assert v.shape == (e.dim,) and v.dtype == np.float32
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)


def test_similar_images_rank_first():
    e = ClassicalEmbedder()
    imgs = {
        "red_square": png((220, 20, 20)),
        "red_square_jpeg_bigger": png((210, 30, 25), size=160, fmt="JPEG"),
        "blue_stripes": png((20, 40, 220), "stripes"),
        "blue_stripes_2": png((30, 50, 200), "stripes", size=120),
        "green_circle": png((20, 200, 40), "circle"),
    }
    ids = list(imgs)
    index = ImageIndex(ids, np.stack([e.embed(b) for b in imgs.values()]))
    assert index.similar("red_square", k=1)[0][0] == "red_square_jpeg_bigger"
    assert index.similar("blue_stripes", k=1)[0][0] == "blue_stripes_2"
    idx, sc = index.neighbors(k=2)
    assert ids[idx[0, 0]] == "red_square_jpeg_bigger" and idx[0, 0] != 0
    assert index.similar("missing") == []


def test_bad_bytes_raise_decode_error():
    e = ClassicalEmbedder()
    with pytest.raises(ImageDecodeError):
        e.embed(b"not an image")
    with pytest.raises(ImageDecodeError):
        e.embed(b"")


def test_phash_stable_under_resize():
    small = png((100, 100, 100), "circle", size=96)
    big = Image.open(io.BytesIO(small)).resize((200, 200), Image.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=80)
    a, b = phash_hex(small), phash_hex(buf.getvalue())
    diff = bin(int(a, 16) ^ int(b, 16)).count("1")
    assert diff <= 6


def test_grey_image_and_empty_index():
    e = ClassicalEmbedder()
    v = e.embed(png((128, 128, 128), bg=(128, 128, 128)))   # flat: no gradients, grey bins only
    assert np.isfinite(v).all()
    assert ImageIndex([], np.zeros((0, 10))).similar_to_vector(np.ones(10)) == []
