"""`make run`'s console as a user reads it: the first line names the source (the Makefile's
default is the synthetic generator at its size), a warning is shown whole and wrapped at word
boundaries, what integrations log through Dagster's logger stays in the event log, and the
summary says why the serving table holds fewer tracks than the data."""

import io
import logging
import shlex
import subprocess
from itertools import takewhile
from pathlib import Path

import dagster as dg
import pytest

from ml.evaluation.candidates import UnitData, run_unit
from ml.recommenders.base import CannotFit
from ml.recommenders.popularity import Popularity
from ml.sequences import Sequences
from orchestration import console
from orchestration.cluster.submit import failure_events, follow
from orchestration.config import WORD2VEC_GRID, CandidateConfig
from orchestration.summary import print_failure

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_SELECTION_NOTE = "A dbt subsetted execution is not being performed. Using the default dbt"


def make_run_arguments() -> list[str]:
    """The arguments `make run` passes to orchestration.run (a dry run of the Makefile)."""
    done = subprocess.run(
        ["make", "-s", "-n", "-C", str(REPO_ROOT), "run"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    words = shlex.split(done.stdout.replace("\\\n", " "))
    return words[words.index("orchestration.run") + 1 :]


def test_make_run_names_the_synthetic_generator_and_its_size():
    from orchestration.run import parse_args, run_config, source_description, use_case_of

    args = parse_args(make_run_arguments())
    use_case = use_case_of(args)
    ops = run_config(args, use_case)["ops"]
    assert use_case == "next_track"
    assert source_description(use_case, ops) == "synthetic generator, 5,000 playlists, seed 42"
    args = parse_args([*make_run_arguments(), "--use-case", "user_items"])
    ops = run_config(args, "user_items")["ops"]
    assert source_description("user_items", ops) == "the published playlist rows as interactions"


def skipped_unit_warning() -> str:
    """What a large-data unit of the default grid says when the data is small, as
    fit_and_log logs it."""
    (unit,) = [c for c in WORD2VEC_GRID if c.get("min_train_rows")]
    spec = CandidateConfig(**unit).spec()
    train = Sequences.from_lists([[0, 1, 2]] * 10)
    with pytest.raises(CannotFit) as raised:  # refused before it reads anything else
        run_unit(spec, UnitData.next_track(train, None, Popularity(n_items=3)), None, "unused")
    return f"skipped {spec.unit_name}: {raised.value}"


@dg.op
def says_things(context: dg.OpExecutionContext) -> None:
    context.log.warning(skipped_unit_warning())
    context.log.info("wrote 42 rows")
    # dagster-dbt's own logger: dagster_dbt.asset_utils and core.dbt_cli_invocation
    dg.get_dagster_logger().info(f"{DBT_SELECTION_NOTE} selection arguments `['--select']`.")
    dg.get_dagster_logger().warning("an integration's warning")


console.keep_integration_notes_at_debug()  # as the definitions module does


@dg.job(logger_defs={"progress_console": console.progress_console})
def console_job() -> None:
    says_things()


AT_INFO = {"loggers": {"progress_console": {"config": {"log_level": "INFO"}}}}


@pytest.fixture
def terminal(monkeypatch) -> io.StringIO:
    """What `make run`'s console prints."""
    shown = io.StringIO()
    monkeypatch.setattr(console, "TERMINAL", shown)
    return shown


def test_console_wraps_warnings_whole_and_keeps_integration_notes_off(terminal):
    with dg.instance_for_test() as instance:
        result = console_job.execute_in_process(run_config=AT_INFO, instance=instance)
        event_log = [entry.user_message for entry in instance.all_logs(result.run_id)]
        followed = io.StringIO()  # the cluster's console: the same run read from the event log
        follow(instance, result.run_id, logging.INFO, "the run's page", out=followed)
    assert result.success
    lines = terminal.getvalue().splitlines()
    warning = skipped_unit_warning()
    first = next(i for i, line in enumerate(lines) if " WARNING " in line and "skipped" in line)
    shown = [lines[first], *takewhile(lambda line: line.startswith(" "), lines[first + 1 :])]
    assert len(shown) >= 2  # longer than one line: wrapped, not cut
    assert all(len(line) <= console.WARNING_WIDTH for line in shown)
    words = " ".join(line.split(" WARNING ", 1)[-1] for line in shown).split()
    assert words[-len(warning.split()) :] == warning.split()  # every word, whole
    assert any(line.endswith("says_things: wrote 42 rows") for line in lines)
    assert any(line.endswith(" start  says_things") for line in lines)  # short lines as they are
    assert any(" WARNING " in line and "an integration's warning" in line for line in lines)
    assert DBT_SELECTION_NOTE not in terminal.getvalue()
    assert any(DBT_SELECTION_NOTE in message for message in event_log)  # still in the run
    assert "says_things: wrote 42 rows" in followed.getvalue()
    assert "an integration's warning" in followed.getvalue()
    assert DBT_SELECTION_NOTE not in followed.getvalue()


def test_a_long_info_message_is_cut_at_a_word_boundary():
    text = " ".join(f"word{i}" for i in range(100))
    line = console.progress_line(0.0, logging.INFO, text)
    body = line.split(" ", 1)[1]
    assert body.endswith(" ...") and len(body) <= console.MAX_MESSAGE_CHARACTERS
    assert set(body.removesuffix(" ...").split()) <= set(text.split())


def test_a_run_failed_from_outside_says_why_on_the_cluster_console():
    """The daemon, the code server and the dead-run sensor fail a run with
    ``report_run_failed``: the log entry's own message is empty, the reason is the event's."""
    reason = "Marked failed: run worker process 4242 is gone (killed?)"
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(console_job)
        instance.report_run_failed(run, reason)
        followed = io.StringIO()
        follow(instance, run.run_id, logging.INFO, "the run's page", out=followed)
    assert f"ERROR FAILED run: {reason}" in followed.getvalue()


@dg.op
def fails() -> None:
    raise ValueError("the input has no track_key column")


@dg.job(logger_defs={"progress_console": console.progress_console})
def failing_job() -> None:
    fails()


def test_a_failed_step_s_error_is_shown_once(terminal, capsys):
    """An exception a step raises is named under Dagster's wrapper, on both consoles and in the
    failure summary; the run's failure carries the same error, and its line only names the
    failed steps."""
    with dg.instance_for_test() as instance:
        result = failing_job.execute_in_process(
            run_config=AT_INFO, instance=instance, raise_on_error=False
        )
        followed = io.StringIO()
        follow(instance, result.run_id, logging.INFO, "the run's page", out=followed)
        print_failure(failure_events(instance, result.run_id))
    assert not result.success
    assert "the input has no track_key column" in capsys.readouterr().out
    for shown in (terminal.getvalue(), followed.getvalue()):
        assert shown.count("the input has no track_key column") == 1, shown
        assert shown.count('Error occurred while executing op "fails"') == 1, shown
        assert "FAILED fails:" in shown
        assert "FAILED run: " in shown and "Steps failed: ['fails']" in shown
