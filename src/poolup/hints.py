"""What the workflow tells its user in one line each: where a run's answer is, and how to build its report.

Snakemake builds ``--report`` for the config it is given, not for the last run: a
report asked for without the run's ``--configfile`` options is a report of other
(missing) results. So the end of a run names the report command with the run's own
config options, and a report asked for with results missing says so first.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

REPORT = "results/report.html"


def config_options(
    configfiles: Iterable[str | os.PathLike[str]] = (),
    replace_workflow_config: bool = False,
    config_args: Sequence[str] = (),
) -> list[str]:
    """The command-line options that select a run's config, as Snakemake was given them.

    Parameters
    ----------
    configfiles : iterable of path-like
        The ``--configfile`` files, in order (shown relative to the working directory where they lie in it).
    replace_workflow_config : bool
        Whether ``--replace-workflow-config`` was given.
    config_args : sequence of str
        The ``--config`` items (``key=value``).
    """
    here = Path.cwd().resolve()
    options = ["--replace-workflow-config"] if replace_workflow_config else []
    files = []
    for file in configfiles:
        path = Path(file).resolve()
        files.append(str(path.relative_to(here)) if path.is_relative_to(here) else str(path))
    if files:
        options += ["--configfile", *files]
    if config_args:
        options += ["--config", *config_args]
    return options


def report_command(options: Sequence[str], snakefile: str | os.PathLike[str] | None = None) -> str:
    """The shell command that builds the report of the results ``options`` select, run where the run ran.

    ``snakefile`` is the run's main Snakefile; it is named unless it is the
    working directory's own ``Snakefile``, and the command changes into the
    working directory unless the run was started there (the shell's ``PWD``).
    """
    here = Path.cwd().resolve()
    command = ["snakemake"]
    if snakefile is not None and Path(snakefile).resolve() != here / "Snakefile":
        command += ["--snakefile", str(Path(snakefile).resolve())]
    text = shlex.join([*command, "--report", REPORT, *options])
    started_in = os.environ.get("PWD")
    if started_in and Path(started_in).resolve() != here:
        text = f"cd {shlex.quote(str(here))} && {text}"
    return text


def answer_lines(datasets: Sequence[str], report: str, since: float | None = None) -> list[str]:
    """The lines printed at the end of a successful run: where each data set's answer is, a line for each data
    set the run cannot decide, and the report command.

    Only the data sets whose ``result.csv`` this run wrote (modified at or after ``since``, the run's start;
    any that exists when None): a run that built only a target such as ``raw.h5``, or nothing, prints none.
    Paths are relative to the working directory, named in full when the run was started elsewhere
    (``--directory``).
    """
    here = Path.cwd().resolve()
    started_in = os.environ.get("PWD")
    where = "" if not started_in or Path(started_in).resolve() == here else f"{here}/"
    lines = []
    for name in datasets:
        result = here / f"results/{name}/summary/result.csv"
        if not result.is_file() or (since is not None and result.stat().st_mtime < since):
            continue
        lines.append(
            f"poolup: {name}: the answer (every case against the baseline) in {where}results/{name}/summary/result.csv;"
            f" frontier.md and summary.md beside it, figures in {where}results/{name}/figures/"
        )
        lines += [f"poolup: {name}: {line}" for line in undecidable(result)]
    if not lines:
        return []
    if len(datasets) > 1:
        lines.append(f"poolup: every data set side by side: {where}results/summary/datasets.md")
    lines.append(f"poolup: the report of this run: {report}")
    return lines


def undecidable(result: str | os.PathLike[str]) -> list[str]:
    """summary.md's "cannot decide" line, where it has one (read from its first line)."""
    summary = Path(result).with_name("summary.md")
    first = summary.read_text(encoding="utf-8").split("\n", 1)[0] if summary.is_file() else ""
    return [first] if first.startswith("This run cannot decide") else []


def seeds_notice(seeds: Sequence[int], looks: Sequence[int] | None, given: object) -> str | None:
    """The line printed at the start when a sequential design's looks decide the seeds and ``seeds`` (the
    config's value, ``given``) says other ones: which stands (the looks), and that ``seeds`` is not used."""
    if not looks or list(seeds) == list(range(looks[0])):
        return None
    return (
        f"poolup: analysis.sequential.looks {list(looks)} decides the seeds: {looks[0]} per case, up to {looks[-1]}"
        f" while a verdict is open; seeds: {given} is not used (drop it, or set the looks)"
    )


def report_hint(missing: Sequence[str]) -> str | None:
    """The line printed before ``--report`` when results of the given config are missing (else None)."""
    if not missing:
        return None
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    return (
        f"poolup: {missing[0]}{more} missing: this report is for a config whose results are not there; give"
        " --report the run's --configfile options (the end of each run prints its report command)"
    )
