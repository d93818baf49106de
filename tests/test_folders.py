"""``source: folder``: one subfolder per class, read with Pillow, checked file by file.

The reference for every image is Pillow itself (open, convert, resize), and for the data set the
same images given as an ``.npz``: both routes must write the same ``raw.h5`` content.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import run_snakemake, scheduled_jobs, write_config
from PIL import Image

from poolup.errors import PoolupError
from poolup.folders import folder_files, list_folder, load_folder
from poolup.h5files import read_image_set
from poolup.preprocess import fetch_source


def write_folder(root: Path, classes=("ant", "bee", "cat"), per_class=6, size=(12, 10), seed=0) -> dict:
    """PNG and JPEG files of grey noise plus a class mark; returns {path: (array, label)} in load order."""
    rng = np.random.default_rng(seed)
    written = {}
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            array = rng.integers(0, 60, size=size, dtype=np.uint8)
            array[2 + label * 3 : 5 + label * 3, 2:6] = 240
            suffix = ".png" if i % 2 == 0 else ".jpg"
            path = root / name / f"img{i:03d}{suffix}"
            Image.fromarray(array).save(path, quality=95)
            written[path] = label
    return written


def test_a_folder_reads_as_pillow_reads_each_file_in_sorted_class_and_path_order(tmp_path):
    written = write_folder(tmp_path / "data")
    images, labels, detail, names = load_folder(tmp_path / "data", (12, 10))
    assert names == ("ant", "bee", "cat") and images.shape == (18, 12, 10) and images.dtype == np.uint8
    assert labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    for index, path in enumerate(sorted(written)):
        np.testing.assert_array_equal(images[index], np.asarray(Image.open(path).convert("L")))
    assert "18 images in 3 class folders" in detail


def test_a_folder_of_two_sizes_with_resize_equals_the_same_images_given_as_npz(tmp_path):
    """3 classes, PNG and JPEG, two sizes brought to one by resize: raw.h5 holds what the NPZ route holds."""
    write_folder(tmp_path / "data", per_class=4, size=(12, 10))
    write_folder(tmp_path / "data", per_class=4, size=(16, 14), seed=1)  # the same names: half are rewritten larger
    for path in (tmp_path / "data" / "ant").glob("img00[01]*"):
        path.rename(path.with_name("big-" + path.name))
    write_folder(tmp_path / "data", per_class=2, size=(12, 10), seed=2)
    files = sorted(Path(p) for p in folder_files(tmp_path / "data"))
    sizes = {Image.open(p).size for p in files}
    assert sizes == {(10, 12), (14, 16)}
    reference = np.stack(
        [np.asarray(Image.open(p).convert("L").resize((10, 12), Image.Resampling.BILINEAR)) for p in files]
    )
    ref_labels = np.array([["ant", "bee", "cat"].index(p.relative_to(tmp_path / "data").parts[0]) for p in files])
    np.savez(tmp_path / "same.npz", images=reference, labels=ref_labels)
    fetch_source(tmp_path / "f.h5", "folder", str(tmp_path / "data"), resize=[12, 10], resample="bilinear")
    fetch_source(tmp_path / "n.h5", "npz", str(tmp_path / "same.npz"))
    from_folder, from_npz = read_image_set(tmp_path / "f.h5"), read_image_set(tmp_path / "n.h5")
    np.testing.assert_array_equal(from_folder.images, from_npz.images)
    np.testing.assert_array_equal(from_folder.labels, from_npz.labels)
    assert from_folder.attrs["class_names"] == ["ant", "bee", "cat"] and "class_names" not in from_npz.attrs


def test_colour_images_read_as_rgb_and_grey_as_luma(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    for name in ("red", "blue"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(rgb if name == "red" else rgb[..., ::-1].copy()).save(tmp_path / name / f"{i}.png")
    images, labels, _, names = load_folder(tmp_path, (8, 8, 3))
    assert images.shape == (4, 8, 8, 3) and names == ("blue", "red")
    assert images[0, 0, 0].tolist() == [0, 0, 200] and images[2, 0, 0].tolist() == [200, 0, 0]
    grey, _, _, _ = load_folder(tmp_path, (8, 8))
    assert grey[2, 0, 0] == np.asarray(Image.fromarray(rgb).convert("L"))[0, 0]


def test_hidden_system_and_non_image_files_are_skipped_and_nested_folders_read(tmp_path):
    write_folder(tmp_path, classes=("a", "b"), per_class=2)
    (tmp_path / "a" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "a" / "Thumbs.db").write_bytes(b"\0\1")
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden-class").mkdir()
    (tmp_path / "b" / "more").mkdir()
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(tmp_path / "b" / "more" / "x.png")
    listing = list_folder(tmp_path)
    assert listing.class_names == ("a", "b") and [len(f) for f in listing.files] == [2, 3]
    assert listing.skipped == {"hidden or system file": 2, "not an image suffix": 1}


def test_the_first_frame_of_an_animated_gif_and_an_exif_rotation_applied(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    frames = [Image.fromarray(np.full((6, 6), value, np.uint8)).convert("P") for value in (10, 200)]
    frames[0].save(tmp_path / "a" / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(np.full((6, 6), 50, np.uint8)).save(tmp_path / "a" / "plain.png")
    tall = np.zeros((6, 4), np.uint8)  # stored 4 wide and 6 high, tagged "rotate 90": shown 6 wide and 4 high
    tall[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(tall).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "b" / "r.jpg", exif=exif, quality=100)
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(tmp_path / "b" / "s.png")
    with pytest.raises(
        PoolupError, match=r"images of 2 sizes \(height x width\), 6x6 \(3, e\.g\. .*\), 6x4 \(1, e\.g\. .*r\.jpg\)"
    ):
        load_folder(tmp_path, (6, 6))
    images, _, _, _ = load_folder(tmp_path, (6, 6), resize=(6, 6), resample="nearest")
    assert images[0].max() == 10  # the GIF's first frame, not its second


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), r"b/bad\.png: cannot be read as an image"),
        (lambda p: p.write_text("hello"), r"b/bad\.png: cannot be read as an image"),
        (
            lambda p: Image.fromarray(np.zeros((12, 10), np.uint8)).save(p.with_suffix(".jpg"), quality=90),
            None,  # a good file: the truncation is done below
        ),
        (
            lambda p: Image.fromarray(np.zeros((12, 10), np.uint16) + 300).save(p),
            r"b/bad\.png: a I;16 image \(more than 8 bits per pixel\); convert it to 8 bits",
        ),
        (
            lambda p: Image.fromarray(np.zeros((12, 10), np.uint8)).convert("P").save(p, transparency=0),
            r"b/bad\.png: a P image with transparent pixels; flatten it",
        ),
        (
            lambda p: Image.new("CMYK", (10, 12)).save(p.with_suffix(".jpg")),
            r"b/bad\.jpg: a CMYK image; convert it to L \(grey\) or RGB first",
        ),
    ],
    ids=["zero-bytes", "text-named-png", "truncated-jpeg", "16-bit-png", "palette-transparency", "cmyk-jpeg"],
)
def test_each_bad_file_is_refused_with_one_line_naming_it(tmp_path, make, message):
    write_folder(tmp_path, classes=("a", "b"), per_class=2)
    make(tmp_path / "b" / "bad.png")
    if message is None:  # the truncated JPEG: a real file cut in half
        path = tmp_path / "b" / "bad.jpg"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        message = r"b/bad\.jpg: cannot be read as an image"
    with pytest.raises(PoolupError, match=message) as caught:
        load_folder(tmp_path, (12, 10))
    assert "\n" not in str(caught.value)


def test_class_folder_faults_are_named(tmp_path):
    write_folder(tmp_path, classes=("a", "b"), per_class=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PoolupError, match=r"empty: class folder without an image file"):
        load_folder(tmp_path, (12, 10))
    os.rmdir(tmp_path / "empty")
    for path in sorted((tmp_path / "b").iterdir())[1:]:
        path.unlink()
    with pytest.raises(PoolupError, match=r"class 'b' has only one image \(img000\.png\); every class needs at least"):
        load_folder(tmp_path, (12, 10))
    with pytest.raises(PoolupError, match=r"datasets\[\].resample 'cubic' is unknown"):
        load_folder(tmp_path, (12, 10), resample="cubic")
    with pytest.raises(PoolupError, match=r"not a folder; for source 'folder'"):
        load_folder(tmp_path / "nowhere", (12, 10))
    with pytest.raises(PoolupError, match=r"a: 0 class folders; a folder data set holds one subfolder per class"):
        load_folder(tmp_path / "a", (12, 10))


def test_a_wrong_image_shape_names_the_key(tmp_path):
    write_folder(tmp_path, classes=("a", "b"), per_class=2)
    with pytest.raises(PoolupError, match=r"images are \[12, 10\] but datasets\[\]\.image_shape is \[28, 28\]"):
        fetch_source(tmp_path / "raw.h5", "folder", str(tmp_path), expected_shape=(28, 28))
    assert not (tmp_path / "raw.h5").exists()


def test_the_workflow_reads_a_folder_and_refetches_when_a_file_is_added_or_replaced(tmp_path):
    """Every image file is an input of fetch: a new file or a replaced one refetches, a skipped file does not."""
    write_folder(tmp_path / "photos", classes=("ant", "bee"), per_class=10, size=(20, 18))
    config = write_config(
        tmp_path / "folder.yaml",
        datasets=[{"name": "mine", "source": "folder", "path": str(tmp_path / "photos"), "image_shape": [20, 18]}],
        cases={"baseline": {"window": 1, "stride": 1}, "w2s2": {"window": 2, "stride": 2}},
        seeds=1,
    )
    run_snakemake(tmp_path, "--cores", "2", "results/mine/w2s2/stored.h5", configfiles=[config])
    raw = read_image_set(tmp_path / "results/mine/raw.h5", image_shape=(20, 18))
    assert raw.attrs["class_names"] == ["ant", "bee"] and raw.images.shape == (20, 20, 18)
    assert "20 images in 2 classes; 0 files skipped" in (tmp_path / "results/logs/mine/fetch.log").read_text()
    (tmp_path / "photos/bee/notes.txt").write_text("skipped: not an image")
    planned = run_snakemake(tmp_path, "-n", "results/mine/w2s2/stored.h5", configfiles=[config]).stdout
    assert "Nothing to be done" in planned
    Image.fromarray(np.zeros((20, 18), np.uint8)).save(tmp_path / "photos/bee/new.png")
    planned = run_snakemake(tmp_path, "-n", "results/mine/w2s2/stored.h5", configfiles=[config]).stdout
    assert {rule for rule, _ in scheduled_jobs(planned)} == {"fetch", "pool", "store"}
    assert f"Updated input files: {tmp_path / 'photos/bee/new.png'}" in planned
    run_snakemake(tmp_path, "--cores", "2", "results/mine/w2s2/stored.h5", configfiles=[config])
    assert read_image_set(tmp_path / "results/mine/raw.h5").images.shape[0] == 21
    (tmp_path / "photos/ant/img003.jpg").unlink()
    planned = run_snakemake(tmp_path, "-n", "results/mine/w2s2/stored.h5", configfiles=[config]).stdout
    assert "fetch" in {rule for rule, _ in scheduled_jobs(planned)} and "Set of input files has changed" in planned


def test_links_and_class_names_with_spaces_and_accents(tmp_path):
    """A link to a file outside the folder is read as the file; a loop of links is an unreadable file, named;
    a link to a folder is not followed (no endless walk); class names keep their spaces and accents."""
    outside = tmp_path / "elsewhere.png"
    Image.fromarray(np.full((12, 10), 77, np.uint8)).save(outside)
    root = tmp_path / "data"
    write_folder(root, classes=("café au lait", "Ødegaard"), per_class=2)
    (root / "café au lait" / "linked.png").symlink_to(outside)
    (root / "Ødegaard" / "up").symlink_to(root, target_is_directory=True)  # a loop, were it followed
    images, labels, _, names = load_folder(root, (12, 10))
    assert names == ("café au lait", "Ødegaard") and images.shape[0] == 5
    assert (images[labels == 0] == 77).all(axis=(1, 2)).sum() == 1
    fetch_source(tmp_path / "raw.h5", "folder", str(root), expected_shape=(12, 10))
    assert read_image_set(tmp_path / "raw.h5").attrs["class_names"] == ["café au lait", "Ødegaard"]
    (root / "Ødegaard" / "a.png").symlink_to(root / "Ødegaard" / "b.png")
    (root / "Ødegaard" / "b.png").symlink_to(root / "Ødegaard" / "a.png")
    with pytest.raises(PoolupError, match=r"Ødegaard/a\.png: cannot be read as an image"):
        load_folder(root, (12, 10))
