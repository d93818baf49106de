"""Storage recipes: each transform against a plain reference (NumPy, Pillow), and the chain through the stages."""

from __future__ import annotations

import io
import json

import h5py
import numpy as np
import pytest
from PIL import Image, features

from poolup import image_files, quantization
from poolup.errors import PoolupError
from poolup.interpolation import upsample_images
from poolup.preprocess import fetch_source, pool, pool_and_store, store, upsample
from poolup.recipe import Recipe, read_back

needs_avif = pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF")


def real_digits(n: int = 120) -> np.ndarray:
    from poolup.sources import load_bundled

    return np.asarray(load_bundled()[0][:n]).reshape(n, 28, 28).astype(np.uint8)


# --- quantisation: codes and read-back as the plain NumPy formula -------------------------------


@pytest.mark.parametrize("bits", range(1, 9))
def test_codes_are_the_plain_formula_and_pack_losslessly(bits):
    images = np.random.default_rng(bits).integers(0, 256, size=(37, 13, 11), dtype=np.uint8)
    levels = 2**bits - 1
    reference = np.rint(images.astype(np.float64) * levels / 255).astype(np.uint8)
    codes = quantization.to_codes(images, bits)
    np.testing.assert_array_equal(codes, reference)
    np.testing.assert_allclose(
        quantization.from_codes(codes, bits), reference.astype(np.float64) * 255 / levels, rtol=1e-6
    )
    packed = quantization.pack(codes, bits)
    assert packed.shape == (37, quantization.packed_width(13 * 11, bits))
    np.testing.assert_array_equal(quantization.unpack(packed, bits, (13, 11)), codes)


def test_one_bit_packs_as_numpy_packbits():
    codes = np.random.default_rng(0).integers(0, 2, size=(5, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(quantization.pack(codes, 1), np.packbits(codes.reshape(5, -1), axis=1))


def test_eight_bits_is_the_identity():
    images = real_digits(10)
    np.testing.assert_array_equal(quantization.to_codes(images, 8), images)
    np.testing.assert_array_equal(quantization.from_codes(images, 8), images.astype(np.float32))


def test_black_and_white_stay_exact_at_every_depth():
    for bits in range(1, 9):
        back = quantization.from_codes(quantization.to_codes(np.array([0, 255], np.uint8), bits), bits)
        np.testing.assert_array_equal(back, [0.0, 255.0])


# --- image files: exactly what Pillow writes and opens ----------------------------------------


def pillow_file(image: np.ndarray, codec: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format={"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}[codec], quality=quality)
    return buffer.getvalue()


def pillow_open(data: bytes, mode: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert(mode))


@pytest.mark.parametrize("codec", ["jpeg", "webp", pytest.param("avif", marks=needs_avif)])
def test_one_file_per_image_is_what_pillow_writes_and_opens(codec):
    images = real_digits(12)
    encoded, sizes = image_files.encode(images, codec, 40)
    files = [pillow_file(image, codec, 40) for image in images]
    assert sizes.tolist() == [len(file) for file in files]
    assert encoded.tobytes() == b"".join(files)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    decoded = image_files.decode(encoded, offsets, len(images), (28, 28))
    np.testing.assert_array_equal(decoded, np.stack([pillow_open(file, "L") for file in files]))


@pytest.mark.parametrize("codec", ["jpeg", "webp", pytest.param("avif", marks=needs_avif)])
def test_tiled_files_are_one_pillow_picture_of_the_images_row_by_row(codec):
    images = real_digits(10)  # 10 per file: 4 columns, 3 rows, two cells black
    encoded, sizes = image_files.encode(images, codec, 60, tile=10)
    assert len(sizes) == 1
    canvas = np.zeros((3 * 28, 4 * 28), np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, 4)
        canvas[row * 28 : (row + 1) * 28, column * 28 : (column + 1) * 28] = image
    assert encoded.tobytes() == pillow_file(canvas, codec, 60)
    picture = pillow_open(encoded.tobytes(), "L")
    decoded = image_files.decode(encoded, np.array([0, sizes[0]]), 10, (28, 28), tile=10)
    for index in range(10):
        row, column = divmod(index, 4)
        np.testing.assert_array_equal(
            decoded[index], picture[row * 28 : (row + 1) * 28, column * 28 : (column + 1) * 28]
        )


def test_colour_images_are_written_and_read_as_rgb():
    images = np.random.default_rng(1).integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    encoded, sizes = image_files.encode(images, "webp", 90)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    decoded = image_files.decode(encoded, offsets, 3, (16, 16, 3))
    first = encoded[: sizes[0]].tobytes()
    np.testing.assert_array_equal(decoded[0], pillow_open(first, "RGB"))


def test_an_image_shape_a_codec_cannot_hold_is_one_line():
    with pytest.raises(PoolupError, match="grey or RGB only"):
        image_files.image_mode((28, 28, 2))


def test_a_tile_larger_than_the_format_allows_is_refused():
    with pytest.raises(PoolupError, match="use a smaller tile"):
        image_files.encode_file(np.zeros((1, 16400, 8), np.uint8), "webp", 50)


# --- the recipe ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "family", "text"),
    [
        ({"window": 1, "stride": 1}, "baseline", "as is"),
        ({"window": 2, "stride": 2}, "pool", "pool 2x2/2"),
        ({"window": 1, "stride": 1, "bits": 1}, "quantize", "1 bit"),
        ({"window": 2, "stride": 2, "bits": 4}, "pool+quantize", "pool 2x2/2 + 4 bits"),
        ({"window": 1, "stride": 1, "codec": "webp", "quality": 50}, "codec", "webp q50, 1 image per file"),
        (
            {"window": 2, "stride": 2, "codec": "avif", "tile": 64},
            "pool+codec",
            "pool 2x2/2 + avif default quality, 64 images per file",
        ),
    ],
)
def test_family_and_description(spec, family, text):
    recipe = Recipe.from_case(spec)
    assert (recipe.family, recipe.describe()) == (family, text)
    assert Recipe.from_attrs({"window": spec["window"], "stride": spec["stride"], **recipe.recorded()}) == recipe


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"bits": 2, "codec": "webp"}, "bits and codec cannot be combined"),
        ({"quality": 50}, "quality and tile apply to a codec"),
        ({"tile": 4}, "quality and tile apply to a codec"),
        ({"codec": "gif"}, "unknown codec 'gif'"),
    ],
)
def test_recipes_that_cannot_be_stored_are_refused(spec, message):
    with pytest.raises(PoolupError, match=message):
        Recipe.from_case({"window": 1, "stride": 1, **spec})


# --- the stages: pool writes the payload, store keeps it under the filter, upsample reads it back


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw")
    images = real_digits(300)
    np.savez(folder / "digits.npz", images=images, labels=np.arange(300) % 10)
    fetch_source(folder / "raw.h5", "npz", str(folder / "digits.npz"))
    return folder / "raw.h5", images


RECIPES = {
    "bits2": {"window": 1, "stride": 1, "bits": 2},
    "w2s2_bits6": {"window": 2, "stride": 2, "bits": 6},
    "webp": {"window": 1, "stride": 1, "codec": "webp", "quality": 30},
    "w2s2_jpeg_tiled": {"window": 2, "stride": 2, "codec": "jpeg", "quality": 50, "tile": 64},
}


def pooled_reference(images: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Plain average pooling (scipy-free, loop over windows), rounded to uint8."""
    side = (images.shape[1] - window) // stride + 1
    out = np.empty((len(images), side, side))
    for i in range(side):
        for j in range(side):
            out[:, i, j] = images[:, i * stride : i * stride + window, j * stride : j * stride + window].mean(
                axis=(1, 2)
            )
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def expected_back(images: np.ndarray, spec: dict) -> np.ndarray:
    pooled = pooled_reference(images, spec["window"], spec["stride"])
    if "bits" in spec:
        levels = 2 ** spec["bits"] - 1
        return (np.rint(pooled.astype(np.float64) * levels / 255) * 255 / levels).astype(np.float32)
    tile = spec.get("tile", 1)
    back = []
    for start in range(0, len(pooled), tile):
        part = pooled[start : start + tile]
        data = image_files.encode_file(part, spec["codec"], spec["quality"])
        back.append(image_files.decode_file(data, len(part), part.shape[1:]))
    return np.concatenate(back)


@pytest.mark.parametrize("case", RECIPES)
def test_the_chain_stores_the_payload_and_reads_back_what_the_transforms_give(case, raw, tmp_path):
    raw_path, images = raw
    spec = RECIPES[case]
    recipe = Recipe.from_case(spec)
    pooled, stored, storage = tmp_path / "pooled.h5", tmp_path / "stored.h5", tmp_path / "storage.json"
    pool(
        raw=raw_path, pooled=pooled, case=case, window=spec["window"], stride=spec["stride"], encoding=recipe.encoding()
    )
    record = store(pooled=pooled, raw=raw_path, stored=stored, storage=storage, encoding={"filter": "gzip", "level": 4})
    expected = expected_back(images, spec)
    with h5py.File(pooled) as p, h5py.File(stored) as s:
        payload = {"codes": ["codes"], "files": ["encoded", "offsets"]}[recipe.layout]
        assert sorted(set(s) - {"labels"}) == sorted(payload)  # what the store holds, and only that
        np.testing.assert_array_equal(read_back(p), expected)
        np.testing.assert_array_equal(read_back(s), expected)
        np.testing.assert_array_equal(read_back(s, 70, 131), expected[70:131])  # a slice across files
        measured = sum(s[name].id.get_storage_size() for name in payload)
        if recipe.layout == "files":
            assert s["encoded"].compression is None  # the codec takes the filter's place
            sizes = np.diff(s["offsets"][()])
            assert record["file_bytes"] == int(sizes.sum()) == s["encoded"].shape[0]
            assert record["files"] == len(sizes)
    assert record["stored_bytes"] == measured
    assert record["bytes_per_image"] == measured / 300
    assert json.loads(storage.read_text())["byte_ratio"] == pytest.approx(measured / record["raw_bytes_same_filter"])
    upsampled = tmp_path / "upsampled.h5"
    upsample(pooled=pooled, upsampled=upsampled)
    with h5py.File(upsampled) as u:
        reference = upsample_images(expected, (28, 28), spec["window"], spec["stride"], "corners", "linear")
        np.testing.assert_allclose(u["images"][()], reference, rtol=1e-6, atol=1e-4)


def test_pool_and_store_in_one_step_equals_the_two_stages(raw, tmp_path):
    raw_path, _ = raw
    spec = RECIPES["webp"]
    encoding = Recipe.from_case(spec).encoding()
    pool_and_store(raw_path, tmp_path / "one.h5", tmp_path / "one.json", "webp", 1, 1, encoding=encoding)
    pool(raw=raw_path, pooled=tmp_path / "p.h5", case="webp", window=1, stride=1, encoding=encoding)
    store(
        pooled=tmp_path / "p.h5",
        raw=raw_path,
        stored=tmp_path / "two.h5",
        storage=tmp_path / "two.json",
        encoding={"filter": "gzip", "level": 4},
    )
    with h5py.File(tmp_path / "one.h5") as one, h5py.File(tmp_path / "two.h5") as two:
        np.testing.assert_array_equal(one["encoded"][()], two["encoded"][()])


def test_recipes_without_quantisation_or_codec_record_nothing_new(raw, tmp_path):
    """Files of pooling-only recipes are those written before recipes existed (no new attributes)."""
    raw_path, _ = raw
    pool(raw=raw_path, pooled=tmp_path / "p.h5", case="w2s2", window=2, stride=2, encoding=Recipe(2, 2).encoding())
    with h5py.File(tmp_path / "p.h5") as file:
        assert not set(file.attrs) & {"bits", "codec", "quality", "tile"}
        assert sorted(file) == ["images", "labels"]


def test_bits_with_float32_storage_is_refused(raw, tmp_path):
    with pytest.raises(PoolupError, match="storage.dtype uint8"):
        pool(raw=raw[0], pooled=tmp_path / "p.h5", case="b", window=1, stride=1, dtype="float32", encoding={"bits": 2})
    assert not (tmp_path / "p.h5").exists()


def test_inspect_names_the_recipe_and_its_payload(raw, tmp_path):
    from poolup.cli import describe_h5

    pool(raw=raw[0], pooled=tmp_path / "p.h5", case="webp", window=1, stride=1, encoding=RECIPES["webp"])
    lines, ok = describe_h5(tmp_path / "p.h5")
    assert ok
    assert "recipe: webp q30, 1 image per file (family codec); images stored as encoded, offsets" in "\n".join(lines)
    assert any(line.startswith("  /encoded: shape (") and "filter none" in line for line in lines)
