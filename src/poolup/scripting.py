"""Glue for the workflow's scripts: log to the job's log file, fail with one line."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from poolup.errors import CONSOLE_LOGGER, PoolupError
from poolup.records import remove_leftovers, write_refusal

log = logging.getLogger("poolup")
console = logging.getLogger(CONSOLE_LOGGER)


@contextlib.contextmanager
def logged_job(snakemake: Any) -> Iterator[logging.Logger]:
    """Run a job's body with output going to its ``log:`` file.

    A :class:`PoolupError` becomes one ``error:`` line in the log and on the
    terminal and a non-zero exit (Snakemake then removes the job's outputs).
    So does a write that the system refused (a full disk, a read-only
    folder: :func:`poolup.records.write_refusal`) wherever it happened,
    named by its path and cause. Any other exception is a bug: its full
    traceback goes to the log (the file Snakemake points to when the job
    fails), and the terminal gets one line naming the exception and that log.
    """
    log_path = snakemake.log[0] if snakemake.log else None
    # Not a `with`: the handle is sys.stderr when there is no log; the log is closed in `finally`.
    handle = open(log_path, "w") if log_path else sys.stderr  # noqa: SIM115
    terminal = sys.stderr
    saved = [os.dup(1), os.dup(2)] if log_path else []
    if log_path:
        # File descriptors too: TensorFlow's C++ code writes to fd 2 directly.
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        terminal = os.fdopen(os.dup(saved[1]), "w")
    sys.stdout = sys.stderr = handle
    logging.basicConfig(stream=handle, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    to_terminal = logging.StreamHandler(terminal)
    to_terminal.setFormatter(logging.Formatter("poolup: %(message)s"))
    console.handlers[:] = [to_terminal] if log_path else []  # without a log, the log's handler is the terminal
    started = time.perf_counter()
    log.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards.items()))
    try:
        # A job killed by kill -9 (of itself or of Snakemake) leaves its temporary
        # files; the rerun of the job is the one place that knows they are stale.
        for output in snakemake.output:
            for stale in remove_leftovers(output):
                log.info("removed %s, left by an interrupted earlier attempt", stale)
        yield log
    except PoolupError as exc:
        _fail(terminal, handle, str(exc))
    except Exception as exc:
        cause = write_refusal(exc)
        if cause is not None:
            where = getattr(_refused(exc), "filename", None)
            _fail(
                terminal,
                handle,
                f"{where or 'a file of this job'}: cannot be written ({cause}); free the space "
                "or make the folder writable, then rerun",
            )
        log.exception("unexpected error (a bug in poolup; please report it with this log)")
        where = f"; the traceback is in {log_path}" if log_path else ""
        terminal.write(f"poolup: unexpected error: {type(exc).__name__}: {str(exc)[:200]}{where}\n")
        _flush(handle)
        raise SystemExit(1) from None
    finally:
        log.info("ended after %.2f s", time.perf_counter() - started)
        _flush(handle)
        for fd, original in zip((1, 2), saved):
            os.dup2(original, fd)
            os.close(original)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        if log_path:
            terminal.close()
            with contextlib.suppress(OSError):  # the log's disk may be the full one
                handle.close()


def _fail(terminal: Any, handle: Any, message: str) -> None:
    """One ``error:`` line in the log and on the terminal, then a non-zero exit."""
    log.error("%s", message)
    terminal.write(f"poolup: error: {message}\n")
    _flush(handle)
    raise SystemExit(1) from None


def _flush(handle: Any) -> None:
    with contextlib.suppress(OSError):  # a full disk: the terminal line says so, the log cannot
        handle.flush()


def _refused(exc: BaseException) -> BaseException:
    """The OSError in ``exc``'s chain (the write the system refused), for its file name."""
    current: BaseException | None = exc
    while current is not None and not isinstance(current, OSError):
        current = current.__cause__ or current.__context__
    return current or exc
