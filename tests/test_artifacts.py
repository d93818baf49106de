import sys

import h5py
import numpy as np
import pytest
from conftest import on_small_disk, with_file_size_limit

from poolup import preprocess
from poolup.cli import main as cli_main
from poolup.errors import PoolupError
from poolup.h5files import read_image_set, write_h5
from poolup.preprocess import fetch_source, pool_and_store, upsample
from poolup.provenance import content_sha256
from poolup.storage import bytes_under_filter, stored_bytes


def test_h5_round_trip_with_attributes_and_checksum(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    labels = np.array([1, 2, 3], np.uint8)
    path = tmp_path / "a.h5"
    digest = write_h5(path, {"images": images, "labels": labels}, {"case": "x", "settings": {"k": [1, 2]}}, "gzip", 6)
    data = read_image_set(path, image_shape=(28, 28), dtype="uint8")
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.attrs["settings"] == {"k": [1, 2]} and data.attrs["content_sha256"] == digest
    with h5py.File(path) as file:
        assert file["images"].compression == "gzip" and file["images"].compression_opts == 6
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "b.h5"
    with pytest.raises(TypeError):
        write_h5(path, {"images": np.zeros((2, 4, 4), np.uint8)}, {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_inspect_reports_and_detects_tampering(tmp_path, capsys):
    path = tmp_path / "c.h5"
    write_h5(path, {"images": np.ones((4, 5, 5), np.uint8), "labels": np.zeros(4, np.uint8)}, {"stage": "test"}, "gzip")
    assert cli_main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "/images: shape (4, 5, 5), uint8, filter gzip level 4" in out and "checksum: OK" in out
    with h5py.File(path, "r+") as file:
        file["images"][0, 0, 0] = 7
    assert cli_main(["inspect", str(path)]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_inspect_refuses_non_hdf5(tmp_path, capsys):
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"not hdf5 at all")
    assert cli_main(["inspect", str(bad)]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err


def test_store_records_real_bytes_and_upsample_chain(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    npz = tmp_path / "d.npz"
    np.savez(npz, images=images, labels=rng.integers(0, 10, 300))
    raw = tmp_path / "raw.h5"
    fetch_source(raw, "npz", str(npz))
    record = pool_and_store(raw, tmp_path / "stored.h5", tmp_path / "storage.json", "w2s2", 2, 2, "uint8", "gzip", 4)
    assert record["stored_shape"] == [14, 14] and record["pixel_ratio"] == 0.25
    assert record["stored_bytes"] == stored_bytes(tmp_path / "stored.h5")
    with h5py.File(raw) as file:
        assert record["raw_bytes_same_filter"] == bytes_under_filter(file["images"], "gzip", 4)
        raw_sha = file.attrs["content_sha256"]
    with h5py.File(tmp_path / "stored.h5") as file:
        assert file.attrs["source_sha256"] == raw_sha and file.attrs["window"] == 2
        assert file.attrs["stored_bytes"] == record["stored_bytes"]
    upsample(tmp_path / "stored.h5", tmp_path / "up.h5")
    result = read_image_set(tmp_path / "up.h5", image_shape=(28, 28), dtype="float32")
    assert result.attrs["source_sha256"] == record["stored_sha256"]


def test_baseline_upsampled_equals_raw_exactly(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "e.npz", images=images, labels=np.arange(40) % 10)
    fetch_source(tmp_path / "raw.h5", "npz", str(tmp_path / "e.npz"))
    pool_and_store(tmp_path / "raw.h5", tmp_path / "s.h5", tmp_path / "s.json", "baseline", 1, 1)
    upsample(tmp_path / "s.h5", tmp_path / "u.h5")
    np.testing.assert_array_equal(read_image_set(tmp_path / "u.h5").images, images.astype(np.float32))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.__delitem__("labels"), "no 'labels' HDF5 dataset"),
        (
            lambda f: (
                f.__delitem__("images"),
                f.create_dataset("images", data=np.zeros((4, 28, 28), np.float32) * np.nan),
            ),
            "NaN",
        ),
        (
            lambda f: (f.__delitem__("labels"), f.create_dataset("labels", data=np.array([0, 1, 2, 300]))),
            "outside 0..255",
        ),
        (
            lambda f: (f.__delitem__("images"), f.create_dataset("images", data=np.zeros((4, 27, 27), np.uint8))),
            "expected (28, 28)",
        ),
        (
            lambda f: (
                f.__delitem__("images"),
                f.create_dataset("images", data=np.full((4, 28, 28), np.inf, np.float32)),
            ),
            "NaN or infinite",
        ),
        (
            lambda f: (f.__delitem__("images"), f.create_dataset("images", data=np.zeros((4, 28, 28), bool))),
            "dtype bool",
        ),
    ],
)
def test_bad_hdf5_content_is_one_line_error(tmp_path, mutate, message):
    path = tmp_path / "f.h5"
    write_h5(path, {"images": np.zeros((4, 28, 28), np.uint8), "labels": np.zeros(4, np.uint8)}, {})
    with h5py.File(path, "r+") as file:
        mutate(file)
        # Re-stamped, as a buggy writer would: the content checks stand behind the digest.
        file.attrs["content_sha256"] = content_sha256(file)
    with pytest.raises(PoolupError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        read_image_set(path, image_shape=(28, 28))
    assert "\n" not in str(info.value)


def test_truncated_hdf5_is_one_line_error(tmp_path):
    path = tmp_path / "g.h5"
    write_h5(path, {"images": np.zeros((400, 28, 28), np.uint8), "labels": np.zeros(400, np.uint8)}, {}, "gzip")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PoolupError, match="truncated"):
        read_image_set(path)


def test_stages_refuse_bad_inputs_and_leave_no_output(tmp_path):
    raw = tmp_path / "raw.h5"
    write_h5(raw, {"images": np.zeros((4, 28, 28), np.float32), "labels": np.zeros(4, np.uint8)}, {})
    with pytest.raises(PoolupError, match="expected uint8"):
        pool_and_store(raw, tmp_path / "stored.h5", tmp_path / "storage.json", "w2s2", 2, 2)
    stored = tmp_path / "stored.h5"
    write_h5(stored, {"images": np.zeros((4, 14, 14), np.uint8), "labels": np.zeros(4, np.uint8)}, {})
    with pytest.raises(PoolupError, match="attributes .* missing"):
        upsample(stored, tmp_path / "upsampled.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.h5", "stored.h5"]


# --- the digest covers attributes; readers check it, the stage and the upstream link ---


def reference_digest(path):
    """The documented content digest, computed independently: datasets by name, then attributes."""
    import hashlib
    import json

    hasher = hashlib.sha256()
    with h5py.File(path) as file:
        for name in sorted(file):
            array = file[name][()]
            hasher.update(f"{name}|{array.dtype.str}|{array.shape}|".encode() + np.ascontiguousarray(array).tobytes())
        for key in sorted(set(file.attrs) - {"content_sha256"}):
            value = file.attrs[key]
            value = (
                value.tolist()
                if isinstance(value, np.ndarray)
                else value.item()
                if isinstance(value, np.generic)
                else value
            )
            hasher.update(f"@{key}|{json.dumps(value, sort_keys=True, separators=(',', ':'))}|".encode())
    return hasher.hexdigest()


def test_digest_covers_every_attribute_and_matches_a_hand_computation(tmp_path):
    path = tmp_path / "a.h5"
    digest = write_h5(
        path,
        {"images": np.arange(2 * 6 * 6, dtype=np.uint8).reshape(2, 6, 6), "labels": np.array([0, 1], np.uint8)},
        {"stage": "pool", "window": 2, "stride": 2, "original_shape": [6, 6], "pixel_ratio": 0.25, "method": "linear"},
    )
    assert digest == reference_digest(path)
    with h5py.File(path, "r+") as file:
        file.attrs["window"] = 3
    assert reference_digest(path) != digest
    with pytest.raises(PoolupError, match="content does not match its recorded sha256") as info:
        read_image_set(path)
    assert "\n" not in str(info.value)


def test_attributes_are_native_hdf5_types(tmp_path):
    path = tmp_path / "n.h5"
    attrs = {
        "image_shape": [28, 28],
        "ratio": [0.5, 0.25],
        "classes": ["a", "b"],
        "window": 2,
        "settings": {"k": [1, 2]},
        "empty": [],
        "mixed": [1, "a"],
        "none": None,
        "flag": True,
    }
    write_h5(path, {"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0, 1], np.uint8)}, attrs)
    with h5py.File(path) as file:
        assert file.attrs["image_shape"].dtype == np.int64 and file.attrs["image_shape"].tolist() == [28, 28]
        assert file.attrs["ratio"].dtype == np.float64
        assert file.attrs["classes"].tolist() == ["a", "b"]
        assert isinstance(file.attrs["settings"], str)  # nested dicts stay JSON
    data = read_image_set(path)
    assert {key: data.attrs[key] for key in attrs} == {**attrs, "none": ""}


def test_files_with_json_text_attributes_still_decode(tmp_path):
    from poolup.provenance import decode_attr

    assert (
        decode_attr("[28, 28]") == [28, 28]
        and decode_attr(b'{"a": 1}') == {"a": 1}
        and decode_attr("[not json") == "[not json"
    )


def test_reader_checks_the_stage_and_the_upstream_link(tmp_path):
    path = tmp_path / "r.h5"
    write_h5(
        path,
        {"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0, 1], np.uint8)},
        {"stage": "fetch", "source_sha256": "ab" * 32},
    )
    assert read_image_set(path, stage="fetch", source_sha256="ab" * 32).images.shape == (2, 4, 4)
    with pytest.raises(PoolupError, match="written by stage 'fetch', expected 'pool'"):
        read_image_set(path, stage="pool")
    with pytest.raises(PoolupError, match="made from a different input"):
        read_image_set(path, source_sha256="cd" * 32)


def test_upsample_refuses_an_edited_input_and_writes_nothing(tmp_path):
    images = np.random.default_rng(2).integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "e.npz", images=images, labels=np.arange(40) % 10)
    fetch_source(tmp_path / "raw.h5", "npz", str(tmp_path / "e.npz"))
    pooled = tmp_path / "pooled.h5"
    preprocess.pool(tmp_path / "raw.h5", pooled, "w2s2", 2, 2)
    with h5py.File(pooled, "r+") as file:
        file.attrs["window"] = 3  # a silent edit would up-sample with the wrong grid
    with pytest.raises(PoolupError, match="content does not match its recorded sha256"):
        upsample(pooled, tmp_path / "up.h5")
    assert not (tmp_path / "up.h5").exists() and not list(tmp_path.glob(".tmp-*"))


# --- strict JSON ----------------------------------------------------------------


def test_write_json_refuses_nan_naming_the_key_and_writes_nothing(tmp_path):
    from poolup.records import write_json

    with pytest.raises(PoolupError, match=r"key 'scores\.f1\.1' is NaN or infinite") as info:
        write_json(tmp_path / "m.json", {"scores": {"f1": [0.5, float("nan")]}})
    assert "\n" not in str(info.value) and list(tmp_path.iterdir()) == []
    with pytest.raises(PoolupError, match="key 'loss' is NaN or infinite"):
        write_json(tmp_path / "m.json", {"loss": np.float32("inf")})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"a": NaN, "content_sha256": "x"}', "NaN is not strict JSON"),
        (b"[1, 2]", "holds a JSON list, not an object"),
        (b'{"a": "\xff"}', "not valid JSON"),
        (b'{"a": 1}', "no content_sha256 recorded"),
        (b'{"a": 1, "content_sha256": 5}', "no content_sha256 recorded"),
        (b'{"a": 1, "content_sha256": "00"}', "content does not match"),
        (b"", "not valid JSON"),
    ],
)
def test_read_json_refuses_what_is_not_a_poolup_record(tmp_path, text, message):
    from poolup.records import read_json

    path = tmp_path / "r.json"
    path.write_bytes(text)
    with pytest.raises(PoolupError, match=message) as info:
        read_json(path)
    assert "\n" not in str(info.value)


def test_aggregation_refuses_an_edited_metrics_file(tmp_path):
    import json

    from poolup.aggregate import collect_runs
    from poolup.records import write_json

    path = tmp_path / "test_metrics.json"
    write_json(path, {"case": "baseline", "seed": 0, "macro_f1": 0.9})
    record = json.loads(path.read_text())
    record["macro_f1"] = 0.99
    path.write_text(json.dumps(record))
    with pytest.raises(PoolupError, match="test_metrics.json: content does not match its recorded sha256"):
        collect_runs([path])


# --- temporary files -------------------------------------------------------------


def test_temporary_names_are_unpredictable_exclusive_and_cleaned(tmp_path):
    import os

    from poolup.records import atomic_path, remove_leftovers

    target = tmp_path / "out.h5"
    # What the old predictable scheme would have used: a planted symlink there is never touched.
    planted = tmp_path / f".tmp-{os.getpid()}-out.h5"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    planted.symlink_to(victim)
    names = []
    for _ in range(2):
        with atomic_path(target) as tmp:
            assert (
                tmp.is_file() and not tmp.is_symlink() and tmp.name.startswith(".tmp-") and tmp.name.endswith("-out.h5")
            )
            names.append(tmp.name)
            tmp.write_text("data")
    assert names[0] != names[1] and planted.name not in names
    assert victim.read_text() == "keep" and target.read_text() == "data"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    # A rerun of the job removes what an interrupted attempt left (here: the planted name).
    assert remove_leftovers(target) == [planted] and victim.read_text() == "keep"


def test_store_writes_every_attribute_before_the_rename(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, size=(60, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "e.npz", images=images, labels=np.arange(60) % 10)
    fetch_source(tmp_path / "raw.h5", "npz", str(tmp_path / "e.npz"))
    record = pool_and_store(tmp_path / "raw.h5", tmp_path / "stored.h5", tmp_path / "storage.json", "w2s2", 2, 2)
    data = read_image_set(tmp_path / "stored.h5")  # the digest holds: nothing was added after it
    assert data.attrs["stored_bytes"] == record["stored_bytes"] == stored_bytes(tmp_path / "stored.h5")


# --- an input made for another case, or with other settings -----------------------


def test_check_made_for_names_the_files_value_and_the_expected_one(tmp_path):
    from poolup.provenance import check_made_for

    recorded = {"case": "baseline", "window": np.int64(1), "stride": 1, "grid": "corners", "shape": np.array([28, 28])}
    # Equal by value: numbers of any type, lists and tuples, None and HDF5's empty text for it.
    check_made_for("f.h5", {**recorded, "codec": ""}, {"window": 1.0, "shape": (28, 28), "codec": None})
    with pytest.raises(PoolupError) as info:
        check_made_for("f.h5", recorded, {"case": "w2s2", "window": 2, "stride": 1})
    assert str(info.value) == (
        "f.h5: made for case 'baseline', window 1, expected case 'w2s2', window 2; a file made for another one (or "
        "from one) is in its place; delete it and rerun snakemake to remake it (`poolup verify` on the results folder "
        "names every such one)"
    )
    with pytest.raises(
        PoolupError,
        match="made for grid 'corners', no bits, expected grid 'centers', bits 4; it is "
        "stale: made with other settings than the config's",
    ):
        check_made_for("f.h5", recorded, {"case": "baseline", "grid": "centers", "bits": 4})
    with pytest.raises(PoolupError, match="made for window 1, expected window true"):  # a bool is no number
        check_made_for("f.h5", recorded, {"window": True})


def test_training_refuses_another_cases_or_a_stale_upsampled_file(tmp_path):
    from poolup.job_inputs import load_training_data

    images = np.random.default_rng(0).integers(0, 256, size=(40, 16, 16), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(40) % 4)
    fetch_source(tmp_path / "raw.h5", "npz", str(tmp_path / "d.npz"))
    preprocess.pool(tmp_path / "raw.h5", tmp_path / "pooled.h5", "baseline", 1, 1)
    upsample(tmp_path / "pooled.h5", tmp_path / "upsampled.h5")
    recipe = {"window": 1, "stride": 1, "method": "linear", "grid": "corners"}
    assert load_training_data(tmp_path / "upsampled.h5", (16, 16), {"case": "baseline", **recipe}).n_classes == 4
    with pytest.raises(
        PoolupError,
        match=r"upsampled.h5: made for case 'baseline', window 1, stride 1, expected "
        r"case 'w2s2', window 2, stride 2; a file made for another one",
    ):
        load_training_data(tmp_path / "upsampled.h5", (16, 16), {"case": "w2s2", **recipe, "window": 2, "stride": 2})
    with pytest.raises(PoolupError, match="made for method 'linear', expected method 'nearest'; it is stale"):
        load_training_data(tmp_path / "upsampled.h5", (16, 16), {"case": "baseline", **recipe, "method": "nearest"})
    # The workflow's path: pooled.h5, up-sampled in memory (the same arrays), checked the same way.
    assert load_training_data(tmp_path / "pooled.h5", (16, 16), {"case": "baseline", **recipe}).n_classes == 4
    with pytest.raises(PoolupError, match=r"pooled.h5: made for case 'baseline', window 1, stride 1, expected case"):
        load_training_data(tmp_path / "pooled.h5", (16, 16), {"case": "w2s2", **recipe, "window": 2, "stride": 2})
    with pytest.raises(PoolupError, match=r"raw.h5: written by stage 'fetch', expected 'pool'"):
        load_training_data(tmp_path / "raw.h5", (16, 16), {"case": "baseline", **recipe})


def test_training_images_made_in_memory_equal_upsampled_h5_bit_for_bit(tmp_path):
    """Training reads pooled.h5 and up-samples in memory: the arrays must be what the upsample stage writes,
    for every layout (pixels, packed codes, image files) and an interpolation with its own grid."""
    from poolup.job_inputs import load_training_data
    from poolup.recipe import Recipe

    fetch_source(tmp_path / "raw.h5", "bundled", max_images=300)
    cases = {
        "w2s2": ({"window": 2, "stride": 2}, "linear"),
        "w3s2": ({"window": 3, "stride": 2}, "cubic"),
        "w2s2_bits2": ({"window": 2, "stride": 2, "bits": 2}, "linear"),
        "webp": ({"window": 1, "stride": 1, "codec": "webp", "quality": 50}, "lanczos"),
    }
    for case, (spec, method) in cases.items():
        recipe = Recipe.from_case(spec)
        pooled, up = tmp_path / f"{case}-pooled.h5", tmp_path / f"{case}-upsampled.h5"
        preprocess.pool(tmp_path / "raw.h5", pooled, case, recipe.window, recipe.stride, "uint8", recipe.encoding())
        upsample(pooled, up, method=method, case=case)
        expected = {"case": case, "window": recipe.window, "stride": recipe.stride, **recipe.recorded()}
        data = load_training_data(pooled, (28, 28), {**expected, "method": method, "grid": "corners"})
        written = read_image_set(up)
        assert data.images.dtype == np.float32 and data.images.tobytes() == written.images.tobytes(), case
        with h5py.File(pooled) as file:  # the runs name the file they were made from: pooled.h5
            assert data.source_sha256 == file.attrs["content_sha256"] and data.source == str(pooled)


# --- links inside an HDF5 file --------------------------------------------------------


@pytest.mark.parametrize("kind", ["external", "soft"])
def test_an_hdf5_link_is_refused_even_with_a_matching_digest(tmp_path, kind):
    outside = tmp_path / "elsewhere" / "images.h5"
    outside.parent.mkdir()
    write_h5(outside, {"images": np.ones((4, 5, 5), np.uint8)}, {"stage": "other"})
    path = tmp_path / "raw.h5"
    write_h5(path, {"labels": np.arange(4, dtype=np.uint8), "kept": np.zeros((4, 5, 5), np.uint8)}, {"stage": "fetch"})
    with h5py.File(path, "r+") as file:
        file["images"] = h5py.ExternalLink(str(outside), "/images") if kind == "external" else h5py.SoftLink("/kept")
        file.attrs["content_sha256"] = content_sha256(file)  # the digest does not see the link
    link = f"an external link to {outside}:/images" if kind == "external" else "a soft link to /kept"
    with pytest.raises(PoolupError, match=f"raw.h5: /images is {link}; a poolup artifact holds its data itself"):
        read_image_set(path)


# --- writes the system refuses: a full disk, a read-only folder, a file size limit ---------

WRITERS = """
import os
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from poolup.h5files import write_h5
from poolup.records import write_figure, write_json
from poolup.errors import PoolupError
folder = sys.argv[1]
images = np.random.default_rng(0).random((200, 28, 28))
writers = {
    "raw.h5": lambda: write_h5(f"{folder}/raw.h5", {"images": images, "labels": np.zeros(200)}, {"a": 1}, "gzip", 4),
    "figure.png": lambda: write_figure(plt.figure(), f"{folder}/figure.png", f"{folder}/figure.pdf", 300),
    "record.json": lambda: write_json(f"{folder}/record.json", {"values": list(range(20000))}),
}
for name, write in writers.items():
    try:
        write()
        print(f"{name}: written")
    except PoolupError as error:
        print(f"poolup: error: {error}")
print("left:", sorted(set(os.listdir(folder)) - {".small-disk"}))  # seen from inside: the mount ends with it
"""


def refused_writes(result, folder, cause: str) -> None:
    """Every writer refused with one line naming its file and the cause; nothing left; a clean exit."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "", result.stderr[-3000:]  # no traceback, not even one HDF5 prints while closing
    *lines, left = result.stdout.splitlines()
    assert [line.split(": cannot be written")[0] for line in lines] == [
        f"poolup: error: {folder}/{name}" for name in ("raw.h5", "figure.png", "record.json")
    ], lines
    assert all(f"cannot be written ({cause}); nothing was written, " in line for line in lines), lines
    assert left == "left: []"


def test_a_full_disk_is_one_line_per_file_and_leaves_nothing(tmp_path):
    folder = tmp_path / "full"
    result = on_small_disk(folder, [sys.executable, "-c", WRITERS, str(folder)], size="16k")
    refused_writes(result, folder, "No space left on device")


def test_a_read_only_folder_is_one_line_per_file(tmp_path):
    folder = tmp_path / "read-only"
    result = on_small_disk(folder, [sys.executable, "-c", WRITERS, str(folder)], read_only=True)
    refused_writes(result, folder, "Read-only file system")


def test_a_file_size_limit_is_one_line_per_file_and_leaves_nothing(tmp_path):
    folder = tmp_path / "limited"
    folder.mkdir()
    result = with_file_size_limit(8192, [sys.executable, "-c", WRITERS, str(folder)])
    refused_writes(result, folder, "File too large")
