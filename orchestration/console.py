"""The console of `make run`: a line when a step starts and when it ends (with its seconds),
what the steps themselves say (training epochs with time left, rows written, the model
registered), warnings, errors and failed checks. Dagster's engine events and what integrations
log through Dagster's logger (dagster-dbt's selection and partial-parse notes) stay in the run's
event log, and dbt's line per node in the step's captured stdout, all in the Dagster UI."""

from __future__ import annotations

import io
import logging
import os
import sys
import textwrap
import time
from typing import TYPE_CHECKING, TextIO

import dagster as dg

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo

SHOWN_EVENTS = {"STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY", "STEP_SKIPPED"}
MAX_MESSAGE_CHARACTERS = 240  # a step's message below WARNING: one line
WARNING_WIDTH = 100  # a warning is shown whole, wrapped at this width...
MAX_WARNING_LINES = 12  # ...up to this many lines (a warning can quote a whole input line)
# get_dagster_logger(): where dagster-dbt and other integrations log ("A dbt subsetted execution
# is not being performed", "Copying ... partial_parse.msgpack"); not what the steps say.
INTEGRATIONS_LOGGER = "dagster.builtin"
# Dagster logs a step waiting for a slot of a pool (the warehouse, the registry) that another run
# holds at DEBUG; without it a waiting run prints nothing and looks hung.
POOL_WAIT = "blocked by limit for pool"
POOL_WAIT_MEANING = "waiting for the run that holds it to release it"


def terminal_stream() -> TextIO | None:
    """A copy of this process's stderr, taken before Dagster captures a step's output: it mirrors
    the captured stderr to the terminal through `tail -F`, killed as the step ends, so a step's
    last lines (its "done") were sometimes never shown. None where stderr is not a file."""
    try:
        return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


# Taken at import: in `make run`'s process and in the forkserver its step processes fork from,
# before any capture.
TERMINAL = terminal_stream()


def step_name(step_key: str | None) -> str:
    """A grid step as graph/op[unit] (track_embeddings/fit[word2vec__...]), not Dagster's
    track_embeddings.track_embeddings__fit[word2vec__...]."""
    if not step_key:
        return "run"
    graph, dot, op = step_key.partition(".")
    return f"{graph}/{op.removeprefix(graph + '__')}" if dot else step_key


def one_line(text: str) -> str:
    return " ".join(text.split())


def error_text(error: SerializableErrorInfo) -> str:
    """An error's message; for an exception a step raised (not a dg.Failure), Dagster's wrapper
    ("Error occurred while executing op ...") and the exception's own message under it."""
    text = error.message.strip()
    if error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
        text += "\n" + error.cause.message.strip()
    return text


def progress_text(
    event, step_key: str | None, message: str, run_id: str, where: str = "make ui, Runs"
) -> str:
    """What the console says of one Dagster event or step message (``event`` None); ``where``
    the run's full log is."""
    kind = event.event_type_value if event is not None else None
    step = step_name(step_key)
    if kind == "PIPELINE_START":
        return f"run {run_id} started (full log: {where})"
    if kind == "STEP_START":
        return f"start  {step}"
    if kind == "STEP_SUCCESS":
        return f"done   {step} in {event.event_specific_data.duration_ms / 1000:.1f} s"
    if kind == "STEP_FAILURE":  # the whole error: it is what the user came to read
        error = event.event_specific_data.error
        return f"FAILED {step}: {error_text(error) if error else message}"
    if kind == "PIPELINE_FAILURE":
        # A run failed from outside (the daemon, the code server, the dead-run sensor) logs its
        # reason in the event's message only: the log entry's own message is empty. A failed
        # step's error is in the run's too, and was shown with the step.
        data = event.event_specific_data
        error = data.error if data is not None and not data.first_step_failure_event else None
        reason = event.message or message
        return f"FAILED run: {reason}" + (f"\n{error_text(error)}" if error else "")
    if kind == "ASSET_CHECK_EVALUATION":
        evaluation = event.event_specific_data
        return one_line(f"check failed {evaluation.check_name}: {evaluation.description}")
    if POOL_WAIT in message:
        return one_line(f"       {step}: {message}: {POOL_WAIT_MEANING}")
    if kind is not None:
        return one_line(f"{kind.lower()} {step}: {message}")
    return one_line(f"       {step}: {message}")


def progress_shown(event, level: int, message: str, threshold: int) -> bool:
    """Step start/end and run start, steps waiting for a pool, failed checks, anything at WARNING
    and above, and the steps' own messages (no Dagster event) at ``threshold`` and above."""
    if level >= logging.WARNING or POOL_WAIT in message:
        return True
    if event is None:
        return level >= threshold
    kind = event.event_type_value
    if kind == "ASSET_CHECK_EVALUATION":
        return not event.event_specific_data.passed
    return kind in SHOWN_EVENTS or kind == "PIPELINE_START"


def progress_line(timestamp: float, level: int, text: str) -> str:
    """One line below WARNING, shortened at a word boundary; a warning whole, wrapped at word
    boundaries under its first line (up to MAX_WARNING_LINES); an error as it is."""
    prefix = "" if level < logging.WARNING else f"{logging.getLevelName(level)} "
    head = f"{time.strftime('%H:%M:%S', time.localtime(timestamp))} {prefix}"
    if level < logging.WARNING:
        if len(text) > MAX_MESSAGE_CHARACTERS:
            text = textwrap.shorten(
                text, MAX_MESSAGE_CHARACTERS, placeholder=" ...", break_on_hyphens=False
            )
        return head + text
    if level >= logging.ERROR:
        return head + text
    indent = " " * len(head)
    lines = textwrap.wrap(
        text,
        WARNING_WIDTH,
        initial_indent=head,
        subsequent_indent=indent,
        max_lines=MAX_WARNING_LINES,
        placeholder=" ... (the rest: the run's log)",
        break_on_hyphens=False,
        break_long_words=False,
    )
    return "\n".join(lines)


class ProgressFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        meta = record.__dict__.get("dagster_meta", {})
        message = str(meta.get("orig_message", record.getMessage()))
        text = progress_text(
            meta.get("dagster_event"), meta.get("step_key"), message, meta.get("run_id")
        )
        return progress_line(record.created, record.levelno, text)


class ProgressFilter(logging.Filter):
    """``progress_shown`` as a logging filter."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        event = record.__dict__.get("dagster_meta", {}).get("dagster_event")
        return progress_shown(event, record.levelno, record.getMessage(), self.level)


class IntegrationNotesAtDebug(logging.Filter):
    """INTEGRATIONS_LOGGER's INFO records become DEBUG: the event log keeps them (the UI shows
    them at DEBUG), and neither console (`make run`'s, nor the cluster's, which reads the event
    log, where nothing says which logger a message came from) shows them at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


def keep_integration_notes_at_debug() -> None:
    """Once per process: in `make run`'s, and wherever steps run (they import the definitions:
    forkserver children, Celery workers)."""
    integrations = logging.getLogger(INTEGRATIONS_LOGGER)
    if not any(isinstance(f, IntegrationNotesAtDebug) for f in integrations.filters):
        integrations.addFilter(IntegrationNotesAtDebug())


@dg.logger(
    config_schema={"log_level": dg.Field(str, default_value="INFO")},
    description="Compact console for `make run`: step start/end with seconds, the steps' own "
    "messages, warnings and errors.",
)
def progress_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("next_track.progress", level=logging.DEBUG)
    handler = logging.StreamHandler(TERMINAL or sys.stderr)
    handler.setFormatter(ProgressFormatter())
    handler.addFilter(ProgressFilter(logging.getLevelName(init_context.logger_config["log_level"])))
    logger.addHandler(handler)
    return logger


class ShowPoolWaits(logging.Filter):
    """For Dagster's own console (UI runs): records at ``level`` and above, and pool waits at
    INFO, saying what they mean."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO and POOL_WAIT in record.getMessage():
            record.msg = f"{record.getMessage()}: {POOL_WAIT_MEANING}"
            record.args = ()
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return record.levelno >= self.level


@dg.logger(
    config_schema=dg.colored_console_logger.config_schema,
    description="Dagster's colored console logger; steps waiting for a pool slot at INFO.",
)
def console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = dg.colored_console_logger.logger_fn(init_context)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    for handler in logger.handlers:
        handler.setLevel(logging.DEBUG)
        handler.addFilter(ShowPoolWaits(level))
    return logger
