import copy

import pytest
import yaml
from conftest import REPO, run_snakemake, write_config

from poolup.config import check_config_files, load_schema, read_config_file, seed_list, validate_config
from poolup.errors import PoolupError

SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")
PAPER = yaml.safe_load((REPO / "config.yaml").read_text())


def validated(**changes):
    config = copy.deepcopy(PAPER)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return validate_config(config, SCHEMA)


def test_paper_config_is_valid_and_gets_defaults():
    config = validate_config(copy.deepcopy(PAPER), SCHEMA)
    assert list(config["cases"]) == ["baseline", "w2s1", "w2s2", "w3s1", "w3s2"]
    assert config["training"]["epochs"] == 1 and config["training"]["batch_size"] == 32
    assert config["training"]["learning_rate"] == 0.001 and config["interpolation"]["grid"] == "corners"
    assert seed_list(config["seeds"]) == list(range(10))


def test_defaults_fill_missing_sections():
    config = validate_config({"cases": {"baseline": {"window": 1, "stride": 1}}}, SCHEMA)
    assert config["storage"] == {"dtype": "uint8", "filter": "gzip", "level": 4}
    assert config["datasets"][0]["source"] == "openml" and config["seeds"] == 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cases__w2s1": {"window": 0, "stride": 1}}, "'cases.w2s1.window': 0 is less than the minimum of 1"),
        ({"cases__w2s1": {"window": 2, "stride": 0}}, "'cases.w2s1.stride'"),
        ({"cases__big": {"window": 29, "stride": 1}}, "'cases.big.window': 29 is larger than the 28x28 image"),
        ({"cases__tiny": {"window": 20, "stride": 10}}, "'cases.tiny': window 20, stride 10 stores a 1-pixel side"),
        ({"cases__bad/name": {"window": 2, "stride": 2}}, "'cases.bad/name': name 'bad/name' is not safe in a path"),
        ({"cases__w2s1": {"window": 2, "stride": 1, "colour": 1}}, "'cases.w2s1': Additional properties"),
        (
            {"interpolation__method": "bicubic"},
            "'interpolation.method': 'bicubic' is not allowed; use one of nearest, area, linear, cubic, lanczos",
        ),
        (
            {"cases__w9s8": {"window": 9, "stride": 8, "method": "cubic"}},
            "'cases.w9s8': window 9, stride 8 stores a 3-pixel side of data set 'mnist'; cubic interpolation needs "
            ">= 4",
        ),
        (
            {"datasets": [{"name": "small", "image_shape": [16, 16]}], "cases__w9s8": {"window": 9, "stride": 8}},
            "'cases.w9s8': window 9, stride 8 stores a 1-pixel side of data set 'small'",
        ),
        ({"datasets": [{"name": "a"}, {"name": "a"}]}, "'datasets.1.name': 'a' is used twice"),
        ({"datasets": [{"name": "x y"}]}, "'datasets.0.name': name 'x y' is not safe in a path"),
        ({"datasets": [{"name": "m", "source": "ftp"}]}, "'datasets.0.source': 'ftp' is not allowed"),
        ({"datasets": []}, "'datasets'"),
        ({"dataset": {"name": "mnist"}}, "'dataset': replaced by 'datasets', a list"),
        ({"seeds": []}, "'seeds'"),
        ({"seeds": 0}, "'seeds'"),
        ({"seeds": [1, 1]}, "'seeds'"),
        ({"training__learning_rate": "fast"}, "'training.learning_rate': 'fast' is not of type 'number'"),
        ({"training__epochs": -1}, "'training.epochs'"),
        ({"storage__dtype": "int16"}, "'storage.dtype'"),
        ({"baseline": "nope"}, "'baseline': case 'nope' is not among cases"),
        ({"colour": True}, "Additional properties are not allowed ('colour' was unexpected)"),
        # storage recipes
        ({"cases__b": {"window": 1, "stride": 1, "bits": 0}}, "'cases.b.bits': 0 is less than the minimum of 1"),
        ({"cases__b": {"window": 1, "stride": 1, "bits": 9}}, "'cases.b.bits': 9 is greater than the maximum of 8"),
        ({"cases__c": {"window": 1, "stride": 1, "codec": "gif"}}, "'cases.c.codec': 'gif' is not allowed"),
        ({"cases__c": {"window": 1, "stride": 1, "codec": "webp", "quality": 0}}, "'cases.c.quality': 0 is less"),
        ({"cases__c": {"window": 1, "stride": 1, "codec": "webp", "tile": 0}}, "'cases.c.tile': 0 is less"),
        (
            {"cases__c": {"window": 1, "stride": 1, "codec": "webp", "bits": 2}},
            "'cases.c': bits and codec cannot be combined (the codec quantises on its own); drop one",
        ),
        ({"cases__c": {"window": 1, "stride": 1, "quality": 50}}, "'cases.c': quality and tile apply to a codec"),
        (
            {"cases__c": {"window": 1, "stride": 1, "codec": "jpeg"}, "datasets": [{"image_shape": [28, 28, 2]}]},
            "'cases.c.codec': images of shape [28, 28, 2] cannot be stored as JPEG, WebP or AVIF",
        ),
    ],
)
def test_invalid_values_give_one_line_naming_the_key(changes, message):
    with pytest.raises(PoolupError) as info:
        validated(**changes)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_pillow_without_avif_is_named_before_any_job(monkeypatch):
    from PIL import features

    monkeypatch.setattr(features, "check", lambda name: name != "avif")
    with pytest.raises(PoolupError, match=r"'cases.a.codec': this Pillow \(.*\) cannot write AVIF; install a Pillow"):
        validated(cases__a={"window": 1, "stride": 1, "codec": "avif", "quality": 50})


def test_settings_are_in_key_order_whatever_the_file_order():
    # Snakemake compares params as text: the order must not depend on the file.
    forward = validated(training__epochs=1, training__batch_size=32)
    shuffled = copy.deepcopy(PAPER)
    shuffled["training"] = dict(reversed(list(shuffled["training"].items())))
    shuffled["datasets"] = [dict(reversed(list(entry.items()))) for entry in shuffled["datasets"]]
    backward = validate_config(shuffled, SCHEMA)
    assert repr(backward) == repr(forward)
    assert list(backward["training"]) == sorted(backward["training"])
    assert list(backward["cases"]) == list(PAPER["cases"])  # cases keep their (display) order


def test_duplicate_case_names_are_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("cases:\n  a: {window: 2, stride: 2}\n  a: {window: 3, stride: 2}\n")
    with pytest.raises(PoolupError, match="line 3: key 'a' appears twice"):
        check_config_files([path])


def test_snakemake_stops_before_any_job_with_one_line(tmp_path):
    bad = write_config(tmp_path / "bad.yaml", cases={"w2s1": {"window": 2, "stride": -3}})
    result = run_snakemake(tmp_path, "-n", "--cores", "1", configfiles=[bad], check=False)
    assert result.returncode == 1
    # Snakemake's own first line names the profile in use; the rest is our one line.
    errors = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith("Using workflow specific profile")
    ]
    assert "Traceback" not in result.stderr
    assert errors == [
        "poolup: config error: config key 'cases.w2s1.stride': -3 is less than the minimum of 1; fix the value (see "
        "workflow/schemas/config.schema.yaml)"
    ]
    assert not (tmp_path / "results").exists()


# --- values no schema keyword catches -----------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cases__w2s1": {"window": 2.0, "stride": 1}}, "'cases.w2s1.window': 2.0 is not of type 'integer'"),
        ({"training__epochs": 1.0}, "'training.epochs': 1.0 is not of type 'integer'"),
        ({"training__learning_rate": float("nan")}, "'training.learning_rate': nan is not a finite number"),
        ({"training__train_size": float("inf")}, "'training.train_size': inf is not a finite number"),
        ({"plots__dpi": float("-inf")}, "'plots.dpi': -inf is not a finite number"),
        ({"seeds": 2**32}, "'seeds': 4294967296 is not a count 1..10000"),
        ({"seeds": [0, 2**32]}, "distinct seeds in 0..4294967295"),
        ({"seeds": 10001}, "'seeds': 10001 is not a count 1..10000"),
        ({"seeds": [1.0]}, "'seeds'"),
        ({"codecs__names": []}, "'codecs.names': [] should be non-empty"),
        ({"datasets": [{"name": "m", "image_shape": []}]}, "'datasets.0.image_shape'"),
        ({"cases__w2s1\n": {"window": 2, "stride": 1}}, "'cases.w2s1\\n': name 'w2s1\\n' is not safe in a path"),
        ({"datasets": [{"name": "mnist\n"}]}, "name 'mnist\\n' is not safe in a path"),
        ({"cases__" + "w" * 101: {"window": 2, "stride": 1}}, "is 101 characters long; use at most 100"),
        ({"cases__summary": {"window": 2, "stride": 2}}, "name 'summary' is one the workflow uses"),
        ({"cases__Figures": {"window": 2, "stride": 2}}, "name 'Figures' is one the workflow uses"),
        ({"cases__raw.h5": {"window": 2, "stride": 2}}, "name 'raw.h5' is one the workflow uses"),
        ({"cases__seed3": {"window": 2, "stride": 2}}, "name 'seed3' is one the workflow uses"),
        ({"cases__fetch.log": {"window": 2, "stride": 2}}, "name 'fetch.log' is one the workflow uses"),
        ({"datasets": [{"name": "logs"}]}, "'datasets.0.name': name 'logs' is one the workflow uses"),
        ({"datasets": [{"name": "benchmarks"}]}, "name 'benchmarks' is one the workflow uses"),
        ({"cases__W2S1": {"window": 2, "stride": 2}}, "names 'w2s1' and 'W2S1' differ only in letter case"),
        ({"datasets": [{"name": "a"}, {"name": "A"}]}, "names 'a' and 'A' differ only in letter case"),
        (
            {"datasets": [{"name": "m", "source": "npz", "path": "/data/x\0.npz"}]},
            "'datasets.0.path': the text holds a NUL character",
        ),
    ],
)
def test_hostile_values_give_one_line_naming_the_key(changes, message):
    with pytest.raises(PoolupError) as info:
        validated(**changes)
    assert message in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) <= 400


def test_a_huge_bad_value_is_shortened_to_one_line():
    with pytest.raises(PoolupError) as info:
        validated(training__epochs=list(range(5000)))
    assert "'training.epochs'" in str(info.value) and len(str(info.value)) <= 405


def test_reserved_names_cover_every_name_the_rules_use():
    """Every literal folder or file name in the rules' paths is refused as a case or data set name."""
    import re

    from poolup.config import RESERVED_FOLDERS, RESERVED_PATTERN

    text = "\n".join(path.read_text() for path in sorted((REPO / "rules").glob("*.smk")))
    components = {part for path in re.findall(r'"(results/[^"]*)"', text) for part in path.split("/")}
    literal = {part for part in components if "{" not in part}
    assert {"results", "summary", "figures", "logs", "benchmarks", "raw.h5"} <= literal
    for name in literal:
        assert name.lower() in RESERVED_FOLDERS or RESERVED_PATTERN.fullmatch(name), name
    # Components built from a wildcard: the seed folder, and file names (refused by their suffix).
    for part in components - literal:
        example = re.sub(r"\{[^}]*\}", "7", part)
        if part.strip("{}") not in ("dataset", "case") and not re.fullmatch(r"\{[^}]*\}", part):
            assert RESERVED_PATTERN.fullmatch(example), part


def test_the_schema_defaults_are_the_paper_experiment():
    """A config that names only its data set runs what config.yaml runs (the paper's cases, seeds, training)."""
    only_data = validate_config({"datasets": copy.deepcopy(PAPER["datasets"])}, SCHEMA)
    assert only_data == validate_config(copy.deepcopy(PAPER), SCHEMA)
    assert list(only_data["cases"]) == ["baseline", "w2s1", "w2s2", "w3s1", "w3s2"]


# --- what the user meant: text where the schema wants a number --------------------


def test_numbers_written_as_text_are_taken_where_the_schema_wants_a_number():
    """PyYAML reads `1e-3` as text; Snakemake's --config reads every value inside a list or mapping as text."""
    config = validate_config(
        {
            "datasets": [
                {"name": "m", "source": "idx", "path": "/data/2", "max_images": "3000", "image_shape": ["28", "28"]}
            ],
            "cases": {"baseline": {"window": "1", "stride": "1", "label": "1"}},
            "seeds": "3",
            "training": {
                "learning_rate": "1e-3",
                "epochs": "2",
                "stratify": "true",
                "early_stopping": {"enabled": "no"},
            },
            "analysis": {"margin": "5e-3"},
        },
        SCHEMA,
    )
    assert config["training"]["learning_rate"] == 0.001 and config["training"]["epochs"] == 2
    assert config["training"]["stratify"] is True and config["training"]["early_stopping"]["enabled"] is False
    assert config["datasets"][0]["max_images"] == 3000 and config["datasets"][0]["image_shape"] == [28, 28]
    assert config["datasets"][0]["path"] == "/data/2" and config["cases"]["baseline"]["label"] == "1"  # text stays text
    assert config["cases"]["baseline"]["window"] == 1 and config["seeds"] == 3 and config["analysis"]["margin"] == 0.005


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"training__learning_rate": "fast"},
            "'training.learning_rate': 'fast' is not of type 'number'; write a number, such as 0.001 or 1e-3",
        ),
        (
            {"training__epochs": "2.5"},
            "'training.epochs': '2.5' is not of type 'integer'; write a whole number without a decimal point, such "
            "as 2",
        ),
        ({"training__epochs": "1e1"}, "'training.epochs': '1e1' is not of type 'integer'; write a whole number"),
        ({"training__stratify": "maybe"}, "'training.stratify': 'maybe' is not of type 'boolean'; write true or false"),
    ],
)
def test_text_that_is_no_value_of_the_type_says_how_to_write_it(changes, message):
    with pytest.raises(PoolupError) as info:
        validated(**changes)
    assert message in str(info.value)


def test_the_readmes_config_pattern_with_numbers_inside_runs(tmp_path):
    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text())  # the paper's, as in the README
    result = run_snakemake(
        tmp_path,
        "-n",
        "--config",
        "training={epochs: 2, learning_rate: 1e-3, stratify: true}",
        "datasets=[{name: tiny, source: bundled, max_images: 300}]",
        "cases={w2s2: {window: 2, stride: 2}}",
        "seeds=2",
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train_seeds_0_1" in result.stdout  # seeds 0-1: the block cut at the configured seeds


# --- config files: YAML faults name the file and the line ---------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "config.yaml: the config file is empty; write its settings as keys at the top level"),
        ("null\n", "config.yaml: the config file holds only null"),
        ("- seeds: 2\n", "config.yaml: the config file holds a list, not a mapping of keys"),
        ("seeds: 2\ncases:\n\tbaseline: {window: 1, stride: 1}\n", "config.yaml: line 3: a tab indents the text"),
        (
            "seeds: !!python/object:os.system {}\n",
            "config.yaml: line 1: the tag !!python/object:os.system is not allowed",
        ),
        ("seeds: 2\nseeds: 3\n", "config.yaml: line 2: key 'seeds' appears twice"),
        ("cases: {baseline: {window: 1, stride: 1]\n", "config.yaml: line 1: not valid YAML (expected ',' or '}'"),
    ],
)
def test_a_config_file_snakemake_cannot_read_is_named_with_its_line(tmp_path, text, message):
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(PoolupError) as info:
        read_config_file(tmp_path / "config.yaml")
    assert f"{tmp_path / message}" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["", "- seeds: 2\n", "seeds: !!python/object:os.system {}\n"])
def test_the_workflow_names_its_config_file_before_snakemake_reads_it(tmp_path, text):
    (tmp_path / "config.yaml").write_text(text)
    result = run_snakemake(tmp_path, "-n", check=False)
    assert result.returncode == 1
    assert "poolup: config error: config.yaml: " in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "WorkflowError" not in result.stderr


def test_yaml_merge_keys_are_yaml(tmp_path):
    text = (
        "cases:\n"
        "  baseline: {window: 1, stride: 1}\n"
        "  w2s2: &w2s2 {window: 2, stride: 2}\n"
        "  w2s2-nearest:\n    <<: *w2s2\n    method: nearest\n"
        "  w2s2-again:\n    <<: *w2s2\n    stride: 1\n"
    )
    (tmp_path / "merge.yaml").write_text(text)
    cases = check_config_files([tmp_path / "merge.yaml"]) or read_config_file(tmp_path / "merge.yaml")["cases"]
    assert cases["w2s2-nearest"] == {"window": 2, "stride": 2, "method": "nearest"}
    assert cases["w2s2-again"] == {"window": 2, "stride": 1}  # a key given again overrides the merged one
    (tmp_path / "twice.yaml").write_text("cases:\n  w2s2:\n    <<: {window: 2}\n    stride: 2\n    stride: 3\n")
    with pytest.raises(PoolupError, match="twice.yaml: line 5: key 'stride' appears twice"):
        read_config_file(tmp_path / "twice.yaml")


@pytest.mark.parametrize("source", ["npz", "idx", "folder"])
def test_a_data_set_path_that_is_not_there_is_one_line_before_any_job(tmp_path, source):
    from conftest import run_snakemake, write_config

    missing = tmp_path / ("digits.npz" if source == "npz" else "digits")
    config = write_config(tmp_path / "c.yaml", datasets=[{"name": "d", "source": source, "path": str(missing)}])
    result = run_snakemake(tmp_path, "-n", configfiles=[config], check=False)
    said = result.stdout + result.stderr
    assert result.returncode != 0 and "MissingInputException" not in said and "Traceback" not in said
    kind = "file" if source == "npz" else "folder"
    assert f"poolup: config error: datasets[].path {missing}: not found; point it at an existing {kind}" in said
