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


def answer_lines(datasets: Sequence[str], report: str) -> list[str]:
    """The lines printed at the end of a successful run: where the answer is, and the report command."""
    answers = ", ".join(f"results/{name}/summary/result.csv" for name in datasets)
    lines = [
        f"poolup: the answer (every case against the baseline): {answers}; full tables in summary.md beside it,"
        " figures in results/<data set>/figures/"
    ]
    if len(datasets) > 1:
        lines.append("poolup: every data set side by side: results/summary/datasets.md")
    lines.append(f"poolup: the report of this run: {report}")
    return lines


def report_hint(missing: Sequence[str]) -> str | None:
    """The line printed before ``--report`` when results of the given config are missing (else None)."""
    if not missing:
        return None
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    return (
        f"poolup: {missing[0]}{more} missing: this report is for a config whose results are not there; give"
        " --report the run's --configfile options (the end of each run prints its report command)"
    )
