"""Every stage that reads a case's file refuses one made for another case, with one line naming both,
before it writes anything (a file copied over another case's is never consumed)."""

from __future__ import annotations

import pytest

from poolup import preprocess
from poolup.cli import main as cli_main
from poolup.codecs import codec_table, measure_case
from poolup.errors import PoolupError
from poolup.frontier import fidelity
from poolup.records import read_case_records, write_json

ANOTHER_CASE = r"made for case 'baseline', expected case 'w2s2'; a file made for another one"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """raw.h5 of 60 real digits and the baseline case's pooled.h5 and upsampled.h5."""
    folder = tmp_path_factory.mktemp("baseline")
    preprocess.fetch_source(folder / "raw.h5", "bundled", max_images=60)
    preprocess.pool(folder / "raw.h5", folder / "pooled.h5", "baseline", 1, 1)
    preprocess.upsample(folder / "pooled.h5", folder / "upsampled.h5", case="baseline")
    return folder


@pytest.mark.parametrize("stage", ["store", "upsample", "codecs", "fidelity"])
def test_a_stage_given_another_cases_file_refuses_and_writes_nothing(baseline, tmp_path, stage):
    out = tmp_path / "w2s2"
    out.mkdir()
    run = {
        "store": lambda: preprocess.store(
            baseline / "pooled.h5",
            baseline / "raw.h5",
            out / "stored.h5",
            out / "storage.json",
            {"filter": "gzip", "level": 4},
            case="w2s2",
        ),
        "upsample": lambda: preprocess.upsample(baseline / "pooled.h5", out / "upsampled.h5", case="w2s2"),
        "codecs": lambda: measure_case(
            baseline / "raw.h5", baseline / "pooled.h5", out / "storage_codecs.json", sample=10, case="w2s2"
        ),
        "fidelity": lambda: fidelity(
            raw=baseline / "raw.h5", pooled=baseline / "pooled.h5", fidelity=out / "fidelity.json", case="w2s2"
        ),
    }[stage]
    with pytest.raises(PoolupError, match=ANOTHER_CASE):
        run()
    assert list(out.iterdir()) == []


def test_each_cases_record_is_checked_against_the_case_it_is_listed_for(tmp_path):
    """The summary rules (codec table, frontier) list one record per case: a copy of another case's is named."""
    records = {}
    for case in ("baseline", "w2s2"):
        (tmp_path / case).mkdir()
        records[case] = tmp_path / case / "storage_codecs.json"
        write_json(records[case], {"case": case, "codecs": [{"codec": "png", "bytes": 1}]})
    assert [r["case"] for r in read_case_records(list(records.values()), in_case_folders=True)] == ["baseline", "w2s2"]
    records["w2s2"].write_bytes(records["baseline"].read_bytes())
    table = tmp_path / "storage_codecs.csv"
    with pytest.raises(PoolupError, match=rf"w2s2/storage_codecs.json: {ANOTHER_CASE}"):
        codec_table(list(records.values()), table, in_case_folders=True)
    assert not table.exists()


def test_verify_of_a_folder_without_artifacts_is_not_ok(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a run")
    assert cli_main(["verify", str(tmp_path)]) == 2
    assert "holds no file a poolup stage writes; give the results/ folder of a run" in capsys.readouterr().err
