"""The README as a front door and the documentation site's pages (the strict site build is in .ci/run)."""

from __future__ import annotations

import importlib.util
import re

import pytest
import yaml
from conftest import REPO

from poolup.config import load_schema, schema_keys

README = (REPO / "README.md").read_text()
DOCS = REPO / "docs"
PAGES = sorted(path.relative_to(DOCS).as_posix() for path in DOCS.glob("*.md"))
# Words of a project's own history, which user docs leave out.
HISTORY = ("this session", "this project's", "where this workflow was developed", "lent to", "this README showed")


def section(text: str, heading: str) -> str:
    start = text.index(heading + "\n") + len(heading) + 1
    end = text.find("\n## ", start)
    return text[start : end if end != -1 else len(text)]


def test_the_readme_is_a_front_door():
    """At most 150 lines: the question, the answer, install and run, the docs, the citation."""
    assert len(README.splitlines()) <= 150
    for heading in ("## The answer", "## Install and run", "## Tests", "## Documentation", "## Citation"):
        assert heading + "\n" in README, heading
    first_screen = "\n".join(README.splitlines()[:60])
    assert "## The answer" in first_screen and "pip install -e . && snakemake" in first_screen


def test_the_answer_is_three_sentences_and_one_figure():
    answer = section(README, "## The answer")
    assert len(re.findall(r"!\[[^]]*\]\(([^)]+)\)", answer)) == 1
    prose = re.sub(r"!\[[^]]*\]\([^)]+\)", "", answer)
    prose = re.sub(r"\]\([^)]+\)", "]", prose)  # link targets hold dots
    sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(prose.split())) if s.strip()]
    assert len(sentences) <= 3, sentences


def test_every_link_of_the_readme_and_the_pages_leads_to_a_file():
    """Relative links (pages, figures, anchors' pages) exist; the site build checks the anchors."""
    for path in [REPO / "README.md", *(DOCS / page for page in PAGES)]:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if target.startswith(("http://", "https://", "#")):
                continue
            file = (path.parent / target.split("#")[0]).resolve()
            assert file.is_file(), f"{path.relative_to(REPO)}: link to a missing file: {target}"


def test_the_site_lists_every_page():
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    listed = sorted(page for entry in nav for page in entry.values())
    assert listed == PAGES


def test_the_docs_speak_about_the_product():
    for path in [REPO / "README.md", *(DOCS / page for page in PAGES)]:
        text = path.read_text().lower()
        found = [words for words in HISTORY if words in text]
        assert not found, f"{path.relative_to(REPO)}: {found}"


def hook():
    spec = importlib.util.spec_from_file_location("config_reference", DOCS / "hooks/config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_configuration_reference_lists_every_schema_key():
    schema = load_schema(REPO / "workflow/schemas/config.schema.yaml")
    reference = hook().reference(schema)
    for key, spec in schema_keys(schema).items():
        row = next((line for line in reference.splitlines() if line.startswith(f"| `{key}` |")), None)
        assert row is not None, key
        if "enum" in spec:
            assert all(f"`{value}`" in row for value in spec["enum"]), row
    assert "| `cases.*.window` | integer | required | >= 1 |" in reference
    assert "| `seeds` | integer or list of integers | `10` | integer >= 1, <= 10000; or list of integers" in reference


def test_the_configuration_page_holds_the_marker_the_hook_fills():
    module = hook()
    page = (DOCS / module.PAGE).read_text()
    assert module.MARKER in page

    class Page:
        class file:  # noqa: N801  (MkDocs' page.file)
            src_uri = module.PAGE

    filled = module.on_page_markdown(page, Page, None, None)
    assert module.MARKER not in filled and "`training.early_stopping.patience`" in filled
    with pytest.raises(ValueError, match="marker"):
        module.on_page_markdown("# no marker", Page, None, None)
