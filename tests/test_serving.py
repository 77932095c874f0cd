"""The registered pyfunc over HTTP as `make serve` serves it (`mlflow models serve --env-manager
local`): bad input is a 400 that names the row, the item and the problem, never a stack trace; a
large k is capped and unknown tracks are ignored, both said in the server's log."""

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.servers import free_port, server

LEAKS = ("Traceback", "site-packages", 'File "')


@pytest.fixture(scope="module")
def served(tiny_registered_model, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serving") / "serve.log"
    model = f"models:/{tiny_registered_model['name']}/{tiny_registered_model['version']}"
    command = [sys.executable, "-m", "orchestration.serve_model", "--model", model]
    # The interpreter run by its path, its folder not on PATH: MLflow must still find uvicorn.
    scripts = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != scripts)
    with server(
        [*command, "--port", str(port)], f"http://127.0.0.1:{port}/ping", log, {"PATH": path}
    ):
        yield {"url": f"http://127.0.0.1:{port}/invocations", "log": log, **tiny_registered_model}


def invoke(url: str, records: list[dict], params: dict | None = None) -> tuple[int, dict]:
    body = json.dumps({"dataframe_records": records, "params": params or {"k": 3}}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for_log_line(log, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in log.read_text().splitlines() if text in line]
        if lines:
            return lines[-1]
        time.sleep(0.2)
    raise AssertionError(f"no log line with {text!r}:\n{log.read_text()[-3000:]}")


def test_valid_playlists_by_key_and_by_typed_name(served):
    known = served["keys"][0]
    status, body = invoke(served["url"], [{"tracks": [known]}, {"tracks": ["artist a - SONG 0"]}])
    assert status == 200
    rows = body["predictions"]
    assert [r["row"] for r in rows] == [0, 0, 0, 1, 1, 1]
    assert [r["track_key"] for r in rows[:3]] == [r["track_key"] for r in rows[3:]]
    assert known not in {r["track_key"] for r in rows}


K = "Artist A|||Song 0"
BAD_INPUT = [
    # MLflow's own Array(string) enforcement would turn this list into ["A", "n"]
    pytest.param([{"tracks": [K, None]}], None, ["row 0: tracks[1]", "got null"], id="null-item"),
    pytest.param(
        [{"tracks": [K]}, {"tracks": [K, 5]}], None, ["row 1: tracks[1]", "got 5"], id="number"
    ),
    pytest.param([{"tracks": [K, ""]}], None, ["row 0: tracks[1]", 'got ""'], id="empty-item"),
    pytest.param([{"tracks": ["   "]}], None, ["row 0: tracks[0]", "non-empty"], id="blank-item"),
    pytest.param([{"tracks": K}], None, ["row 0: tracks must be a list", '"Artist A'], id="str"),
    pytest.param([{"tracks": None}], None, ["row 0: tracks must be a list", "null"], id="null"),
    pytest.param([{"tracks": [K]}], {"k": 0}, ["k must be at least 1, got 0"], id="k-zero"),
    pytest.param([{"tracks": [K]}], {"k": -3}, ["k must be at least 1, got -3"], id="k-negative"),
    pytest.param([{"tracks": [K]}], {"k": 2.5}, ["'k'", "2.5"], id="k-fraction"),
    pytest.param([{"tracks": [K]}], {"k": "ten"}, ["'k'", "ten"], id="k-text"),
]


@pytest.mark.parametrize(("records", "params", "expected"), BAD_INPUT)
def test_bad_input_is_a_400_naming_row_and_problem(served, records, params, expected):
    status, body = invoke(served["url"], records, params)
    assert status == 400, body
    message = body["message"]
    for fragment in expected:
        assert fragment in message, message
    assert "stack_trace" not in body
    assert not any(leak in json.dumps(body) for leak in LEAKS), body


def test_every_bad_item_is_named_up_to_a_limit(served):
    records = [{"tracks": [None, None]} for _ in range(4)]
    status, body = invoke(served["url"], records)
    assert status == 400
    assert "row 0: tracks[0]" in body["message"] and "row 2: tracks[0]" in body["message"]
    assert body["message"].endswith("and 3 more")


def test_large_k_is_capped_and_logged(served):
    status, body = invoke(served["url"], [{"tracks": [served["keys"][0]]}], {"k": 5000})
    assert status == 200
    assert len(body["predictions"]) == len(served["keys"]) - 1  # all but the heard track
    wait_for_log_line(served["log"], "k=5000 capped at 1000")


def test_unknown_tracks_are_ignored_and_logged(served):
    known = served["keys"][0]
    records = [{"tracks": [known, "Nobody - Nothing"]}, {"tracks": [known]}]
    status, body = invoke(served["url"], records)
    assert status == 200
    assert {r["row"] for r in body["predictions"]} == {0, 1}
    line = wait_for_log_line(served["log"], "unknown to the model")
    assert "1 of 3 tracks" in line and "(1 of 2 rows)" in line and "Nobody - Nothing" in line


def test_several_server_workers_get_every_core_and_openblas_threads_that_do_not_spin():
    """Each worker may use both cores for one request; with two workers OpenBLAS's idle threads
    sleep at once (spinning, they took the cores from each other's requests: docs/benchmarks.md);
    what the caller set is kept."""
    from orchestration.serve_model import server_environment

    two = server_environment(workers=2, environ={"PATH": "/bin"}, cpus=2)
    assert two["OMP_NUM_THREADS"] == two["OPENBLAS_NUM_THREADS"] == "2"
    assert two["OPENBLAS_THREAD_TIMEOUT"] == "4"
    assert two["PATH"] == f"{Path(sys.executable).parent}{os.pathsep}/bin"
    one = server_environment(workers=1, environ={}, cpus=2)
    assert one["MKL_NUM_THREADS"] == "2" and "OPENBLAS_THREAD_TIMEOUT" not in one
    kept = server_environment(workers=2, environ={"OMP_NUM_THREADS": "1"}, cpus=2)
    assert kept["OMP_NUM_THREADS"] == "1" and kept["OPENBLAS_NUM_THREADS"] == "2"
