"""``poolup verify`` follows the links artifacts record by digest, never by a copy of the workflow's layout.

Each test copies the finished tiny run's ``results/`` (the session fixture's own files are never
touched), breaks or moves something, and checks the exact findings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest

from poolup.cli import main as cli_main
from poolup.provenance import content_sha256
from poolup.records import write_json
from poolup.verify import verify_tree

DATASET = "tiny"
CASE, OTHER = "w2s2", "baseline"  # two of the tiny run's cases
CODEC_CASE = "w2webp"  # the third: pool + one WebP file per image
SEEDS = (0, 1)


@pytest.fixture
def tree(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run's results/ folder."""
    source, _ = tiny_run
    copy = tmp_path / "results"
    shutil.copytree(source / "results", copy, symlinks=True)
    return copy


def content(path: Path) -> str:
    """The content digest an artifact records (HDF5 attribute or JSON key)."""
    if path.suffix == ".h5":
        with h5py.File(path, "r") as file:
            return str(file.attrs["content_sha256"])
    return json.loads(path.read_text())["content_sha256"]


def made_from(path: Path, digest: str, root: Path) -> str:
    """The finding for a file whose ``source_sha256`` no file of ``root`` holds."""
    return (
        f"{path}: made from content {digest[:12]} (source_sha256), which no file in {root} holds: its input was "
        "replaced, changed or deleted; rerun the workflow"
    )


def replaced_since(path: Path, digest: str, name: str) -> str:
    """The finding for a file whose named input (``source_file``) now holds other content."""
    return (
        f"{path}: made from content {digest[:12]} (source_sha256), but its {name} holds other content: that file was "
        "replaced since (another case's, or an older run's); rerun the workflow"
    )


def copied(path: Path, original: Path, case: str) -> str:
    """The finding for a case's file that sits, identical, in a sibling case's folder."""
    return (
        f"{path}: the same file as {original}, made for case {case!r}: one case's file was copied into another case's "
        f"folder (or made there from such a copy); delete the one outside the folder of case {case!r} and rerun "
        "snakemake"
    )


def mixed(folder: Path, cases: dict[str, list[str]]) -> str:
    """The finding for a folder whose artifacts record several cases."""
    listed = "; ".join(f"case {case!r}: {', '.join(names)}" for case, names in sorted(cases.items()))
    return (
        f"{folder}: holds files made for different cases ({listed}): another case's file was copied in; delete the "
        "ones that are not this folder's and rerun snakemake"
    )


CASE_FILES = ["fidelity.json", "pooled.h5", "storage.json", "storage_codecs.json", "stored.h5"]


def others(*names: str) -> list[str]:
    """The case folder's files but these."""
    return [name for name in CASE_FILES if name not in names]


def test_a_clean_copy_verifies(tree, capsys):
    assert list(verify_tree(tree)) == []
    assert cli_main(["verify", str(tree)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("OK: every checksum and link holds (") and out.endswith(" files checked)"), out
    assert int(out.split("(")[1].split()[0]) == sum(
        1
        for path in tree.rglob("*")
        if path.is_file() and not {"logs", "benchmarks"} & set(path.relative_to(tree).parts)
    )


def test_another_cases_pooled_file_breaks_that_cases_links_only(tree, capsys):
    """pooled.h5 feeds the case's stored file, codec record, fidelity record and runs (trained on it, up-sampled
    in memory): each of them is found, and nothing of the other cases."""
    case = tree / DATASET / CASE
    replaced = content(case / "pooled.h5")
    shutil.copy(tree / DATASET / OTHER / "pooled.h5", case / "pooled.h5")
    expected = sorted(
        [
            copied(case / "pooled.h5", tree / DATASET / OTHER / "pooled.h5", OTHER),
            made_from(case / "storage_codecs.json", replaced, tree),
            *(replaced_since(case / name, replaced, "pooled.h5") for name in ("fidelity.json", "stored.h5")),
            *(
                replaced_since(case / f"seed{seed}" / name, replaced, "../pooled.h5")
                for seed in SEEDS
                for name in ("predictions.h5", "test_metrics.json")
            ),
            mixed(case, {OTHER: ["pooled.h5"], CASE: others("pooled.h5")}),
        ]
    )
    assert sorted(verify_tree(tree)) == expected
    capsys.readouterr()
    assert cli_main(["verify", str(tree)]) == 1
    assert sorted(capsys.readouterr().out.splitlines()[:-1]) == expected


def test_an_upsampled_file_made_on_request_is_checked_like_the_others(tree):
    """upsampled.h5 is written only when asked for; then it is linked to its pooled.h5 like any artifact."""
    from poolup import preprocess

    case = tree / DATASET / CASE
    assert not (case / "upsampled.h5").exists()
    preprocess.upsample(case / "pooled.h5", case / "upsampled.h5", case=CASE)
    assert list(verify_tree(tree)) == []
    shutil.copy(case / "upsampled.h5", tree / DATASET / OTHER / "upsampled.h5")
    other = tree / DATASET / OTHER
    assert sorted(verify_tree(tree)) == sorted(
        [
            held_elsewhere(other / "upsampled.h5", content(case / "pooled.h5"), [case / "pooled.h5"]),
            copied(case / "upsampled.h5", other / "upsampled.h5", CASE),
            mixed(other, {CASE: ["upsampled.h5"], OTHER: CASE_FILES}),
        ]
    )


def test_another_cases_stored_file_breaks_the_storage_record(tree):
    case = tree / DATASET / CASE
    replaced = content(case / "stored.h5")
    shutil.copy(tree / DATASET / OTHER / "stored.h5", case / "stored.h5")
    other_pooled = tree / DATASET / OTHER / "pooled.h5"
    assert sorted(verify_tree(tree)) == sorted(
        [
            f"{case / 'storage.json'}: records stored content {replaced[:12]} (stored_sha256), which no file in {tree} "
            "holds: that file was replaced, changed or deleted; rerun the workflow",
            held_elsewhere(case / "stored.h5", content(other_pooled), [other_pooled]),
            copied(case / "stored.h5", tree / DATASET / OTHER / "stored.h5", OTHER),
            mixed(case, {OTHER: ["stored.h5"], CASE: others("stored.h5")}),
        ]
    )


def test_a_deleted_raw_file_is_named_once_with_the_command_that_remakes_it(tree):
    """Every link to it is broken; the files made from it name it, so it is one finding, with its command."""
    raw = tree / DATASET / "raw.h5"
    raw.unlink()
    pooled = [tree / DATASET / case / "pooled.h5" for case in (OTHER, CASE)]  # and the WebP case's (1 more)
    assert list(verify_tree(tree)) == [
        f"{raw}: missing (deleted), though {pooled[0]}, {pooled[1]} and 1 more were made from it; `snakemake --cores 1 "
        f"results/{DATASET}/raw.h5` in {tree.parent} (with the run's "
        "--configfile options) remakes exactly it"
    ]


def test_a_deleted_input_that_no_record_names_is_still_found(tree):
    """A record without source_file (an older poolup's): the broken link, as before."""
    raw = tree / DATASET / "raw.h5"
    digest = content(raw)
    for case in (OTHER, CASE, CODEC_CASE):
        pooled = tree / DATASET / case / "pooled.h5"
        with h5py.File(pooled, "r+") as file:
            del file.attrs["source_file"]
            file.attrs["content_sha256"] = content_sha256(file)
    raw.unlink()
    found = sorted(verify_tree(tree))
    for case in (OTHER, CASE):
        for name in ("pooled.h5", "storage.json"):
            assert made_from(tree / DATASET / case / name, digest, tree) in found


def test_an_edited_file_is_named_by_the_links_to_it(tree):
    stored = tree / DATASET / CASE / "stored.h5"
    recorded = content(stored)
    with h5py.File(stored, "r+") as file:
        file["images"][0, 0, 0] ^= 1
    assert list(verify_tree(tree)) == [
        f"{stored}: content does not match its recorded sha256 (changed or corrupt)",
        f"{stored.parent / 'storage.json'}: records stored content {recorded[:12]} (stored_sha256), which {stored} "
        "records but no longer holds (changed or corrupt since); rerun the workflow",
    ]


def test_a_link_that_is_no_digest_is_reported(tree):
    record = tree / DATASET / CASE / "storage.json"
    write_json(record, {**json.loads(record.read_text()), "stored_sha256": "not-a-digest"})
    lines = list(verify_tree(tree))
    assert f"{record}: stored_sha256 is 'not-a-digest', not a sha256 digest; delete it and rerun" in lines[0]
    # The summary's manifests recorded the storage record's bytes: it is no longer the file aggregated.
    assert sorted(lines[1:]) == [
        f"{tree / DATASET / 'summary' / manifest}: ../{CASE}/storage.json changed since the aggregation"
        for manifest in ("frontier.manifest.json", "manifest.json")
    ]


def rename_case(tree: Path, old: str, new: str) -> None:
    """Rename a case folder, and the summary manifests' paths through it (rewritten with their digests)."""
    (tree / DATASET / old).rename(tree / DATASET / new)
    for manifest in (tree / DATASET / "summary").glob("*manifest.json"):
        record = json.loads(manifest.read_text())
        for key in ("inputs", "outputs"):
            record[key] = {name.replace(f"../{old}/", f"../{new}/"): digest for name, digest in record[key].items()}
        write_json(manifest, record)


def test_a_moved_and_renamed_tree_verifies_and_a_replaced_file_in_it_is_found(tree, tmp_path):
    moved = tmp_path / "elsewhere" / "archived-run"
    moved.parent.mkdir()
    tree.rename(moved)
    rename_case(moved, CASE, "pooled-2x2")
    case, other = moved / DATASET / "pooled-2x2", moved / DATASET / OTHER
    # Files under names no rule writes: links follow digests, not paths.
    (moved / DATASET / "raw.h5").rename(moved / DATASET / "digits.h5")
    for folder in (case, other):
        (folder / "stored.h5").rename(folder / "kept-images.h5")
    assert list(verify_tree(moved)) == []

    replaced = content(case / "kept-images.h5")
    shutil.copy(other / "kept-images.h5", case / "kept-images.h5")
    assert sorted(verify_tree(moved)) == sorted(
        [
            held_elsewhere(case / "kept-images.h5", content(other / "pooled.h5"), [other / "pooled.h5"]),
            copied(case / "kept-images.h5", other / "kept-images.h5", OTHER),
            f"{case / 'storage.json'}: records stored content {replaced[:12]} (stored_sha256), which no file in "
            f"{moved} holds: that file was replaced, changed or deleted; rerun the workflow",
            mixed(
                case,
                {
                    OTHER: ["kept-images.h5"],
                    CASE: ["fidelity.json", "pooled.h5", "storage.json", "storage_codecs.json"],
                },
            ),
        ]
    )


def held_elsewhere(path: Path, digest: str, holders: list[Path]) -> str:
    """The finding for a file whose input is held only outside its folder and the folders above it."""
    return (
        f"{path}: made from content {digest[:12]} (source_sha256), which only {', '.join(map(str, holders))} holds, "
        "not beside it or in a folder above it: an input was swapped or moved; rerun the workflow"
    )


def test_two_cases_swapped_inputs_are_found(tree):
    """Both files still in the tree, each in the other's place: every link of both cases is reported."""
    case, other = tree / DATASET / CASE, tree / DATASET / OTHER
    digests = {folder: content(folder / "pooled.h5") for folder in (case, other)}
    (case / "pooled.h5").rename(tree / "swap.h5")
    (other / "pooled.h5").rename(case / "pooled.h5")
    (tree / "swap.h5").rename(other / "pooled.h5")
    expected = [
        held_elsewhere(folder / name, digests[folder], [(other if folder == case else case) / "pooled.h5"])
        for folder in (case, other)
        for name in ["fidelity.json", "storage_codecs.json", "stored.h5"]
        + [f"seed{seed}/{name}" for seed in SEEDS for name in ("predictions.h5", "test_metrics.json")]
    ]
    expected += [
        mixed(case, {OTHER: ["pooled.h5"], CASE: others("pooled.h5")}),
        mixed(other, {CASE: ["pooled.h5"], OTHER: others("pooled.h5")}),
    ]
    assert sorted(verify_tree(tree)) == sorted(expected)


def test_an_input_kept_in_another_folder_does_not_stand_in_for_the_one_replaced(tree):
    """The original kept below the case folder (not beside the runs nor above them): the replacement is found."""
    case = tree / DATASET / CASE
    original = content(case / "pooled.h5")
    (case / "kept").mkdir()
    shutil.copy(case / "pooled.h5", case / "kept" / "pooled.h5")
    shutil.copy(tree / DATASET / OTHER / "pooled.h5", case / "pooled.h5")
    assert sorted(verify_tree(tree)) == sorted(
        [
            *(
                held_elsewhere(case / name, original, [case / "kept" / "pooled.h5"])
                for name in ["fidelity.json", "storage_codecs.json", "stored.h5"]
                + [f"seed{seed}/{name}" for seed in SEEDS for name in ("predictions.h5", "test_metrics.json")]
            ),
            copied(case / "pooled.h5", tree / DATASET / OTHER / "pooled.h5", OTHER),
            mixed(case, {OTHER: ["pooled.h5"], CASE: others("pooled.h5")}),
        ]
    )


def test_half_finished_run_folders_are_held_to_what_the_records_name(tree):
    case = tree / DATASET / CASE
    killed = case / "seed7"  # a job killed after its history, before its record
    killed.mkdir()
    shutil.copy(case / "seed0" / "history.csv", killed / "history.csv")
    (case / "seed1" / "model.keras").unlink()
    lines = list(verify_tree(tree))
    assert (
        f"{killed}: a half-finished training job (has history.csv, lacks model.keras, predictions.h5, "
        "test_metrics.json); rerun the workflow to redo it"
    ) in lines
    assert (
        f"{case / 'seed1'}: model.keras deleted after the run (its test_metrics.json lists what it wrote); the "
        "analysis reads only history.csv and test_metrics.json: leave them out of training.keep to go on without "
        "them, or delete the run folder and rerun the workflow to train it again"
    ) in lines
    assert len(lines) == 2, lines


def test_finished_runs_without_their_model_and_predictions_are_one_line(tree):
    """A design kept or archived without the files the analysis does not read (training.keep): one finding."""
    runs = sorted((tree / DATASET).glob("*/seed*"))
    for run in runs:
        for name in ("model.keras", "predictions.h5"):
            (run / name).unlink(missing_ok=True)
    assert list(verify_tree(tree)) == [
        f"{len(runs)} runs, {runs[0]} to {runs[-1]}: model.keras, predictions.h5 deleted after the run (its "
        "test_metrics.json lists what it wrote); the analysis reads only history.csv and test_metrics.json: leave "
        "them out of training.keep to go on without them, or delete the run folder and rerun the workflow to train "
        "it again"
    ]


def test_group_checks_do_not_depend_on_folder_names(tree):
    """Renamed figures and summary folders: a figure without its PDF, an edited codec table and a table
    that no manifest lists are still found."""
    dataset = tree / DATASET
    shutil.rmtree(tree / "summary")  # the cross-data-set table, whose manifest names tiny/summary/
    (dataset / "figures").rename(dataset / "plots")
    (dataset / "summary").rename(dataset / "tables")
    assert list(verify_tree(tree)) == []
    (dataset / "plots" / "examples.pdf").unlink()
    table = dataset / "tables" / "storage_codecs.csv"
    table.write_text(table.read_text().replace("hdf5-gzip", "hdf5-gzip-edited", 1))
    (dataset / "tables" / "extra.csv").write_text("a,b\n1,2\n")
    assert sorted(verify_tree(tree)) == [
        f"{dataset / 'plots' / 'examples.png'}: a half-finished figure (no examples.pdf); rerun the workflow to "
        "redo it",
        f"{dataset / 'tables' / 'extra.csv'}: not recorded in manifest.json (or a stage's manifest), so no stage of "
        "this run wrote it; delete it",
        f"{table}: does not match the storage_codecs.json files it is made from (changed, or a case was added); "
        "rerun the workflow",
    ]


def test_help_is_plain_text(capsys):
    """`poolup --help` is read in a terminal: no reST markup."""
    assert cli_main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "poolup inspect FILE" in text and "Exit status" in text
    assert "``" not in text and ":func:" not in text


# --- files of another case or run, links out of the file ----------------------------


def test_runs_trained_on_another_cases_images_are_found(tree):
    """What an older poolup let happen: another case's images copied in, and the case's runs retrained on them."""
    case = tree / DATASET / CASE
    shutil.copy(tree / DATASET / OTHER / "pooled.h5", case / "pooled.h5")
    for seed in SEEDS:
        record = case / f"seed{seed}" / "test_metrics.json"
        write_json(record, {**json.loads(record.read_text()), "source_sha256": content(case / "pooled.h5")})
    found = list(verify_tree(tree))
    for seed in SEEDS:
        assert (
            f"{case / f'seed{seed}' / 'test_metrics.json'}: records case {CASE!r} but was made from "
            f"{case / 'pooled.h5'}, made for case {OTHER!r}: a file of another case was copied in"
        ) in "\n".join(found)


def test_another_runs_record_in_a_run_folder_is_found(tree):
    case = tree / DATASET / CASE
    shutil.copy(case / "seed0/test_metrics.json", case / "seed1/test_metrics.json")
    assert (
        f"{case / 'seed1/test_metrics.json'}: made for seed 0, but it is in the folder of seed 1: another run's file "
        "was copied in; delete it and rerun snakemake"
    ) in list(verify_tree(tree))


def test_an_hdf5_external_link_to_a_file_outside_the_tree_is_found(tree, tmp_path):
    stored = tree / DATASET / CASE / "stored.h5"
    outside = tmp_path / "outside.h5"
    with h5py.File(stored, "r") as source, h5py.File(outside, "w") as target:
        target["images"] = source["images"][()]
    with h5py.File(stored, "r+") as file:
        del file["images"]
        file["images"] = h5py.ExternalLink(str(outside), "/images")
        file.attrs["content_sha256"] = content_sha256(file)  # the digest does not see what the link reads
    assert (
        f"{stored}: /images is an external link to {outside}:/images; a poolup artifact holds its data itself"
    ) in "\n".join(verify_tree(tree))


def test_show_prints_each_answer_as_a_table(tree, capsys):
    assert cli_main(["show", str(tree)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"tiny ({tree / 'tiny/summary/result.csv'}):\n")
    header = out.splitlines()[1 if "cannot decide" not in out.splitlines()[1] else 2]
    assert header.split()[:2] == ["case", "test_images"]
    assert cli_main(["show", str(tree / "tiny")]) == 2  # no data set folders below: one line, exit 2
    assert "no summary/result.csv or search.md under" in capsys.readouterr().err
