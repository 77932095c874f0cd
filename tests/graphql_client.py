"""The few Dagster GraphQL calls the UI makes to materialize assets and follow runs."""

import json
import time
import urllib.request

LOCATION, REPOSITORY = "next_track", "__repository__"


def graphql(base_url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.load(response)
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


def asset_keys(base_url: str, group: str | None = None) -> list[list[str]]:
    data = graphql(base_url, "{ assetNodes { groupName assetKey { path } } }")
    return [
        node["assetKey"]["path"]
        for node in data["assetNodes"]
        if group is None or node["groupName"] == group
    ]


def materialize_all(
    base_url: str,
    run_config: dict,
    only: list[list[str]] | None = None,
    group: str | None = None,
) -> str:
    """What the UI's "Materialize all" (in a group's view with ``group``; "Materialize
    selected" with ``only``) sends: the implicit asset job with the assets selected."""
    mutation = """
    mutation Launch($params: ExecutionParams!) {
      launchRun(executionParams: $params) {
        __typename
        ... on LaunchRunSuccess { run { runId } }
        ... on PythonError { message }
        ... on RunConfigValidationInvalid { errors { message } }
        ... on InvalidSubsetError { message }
      }
    }"""
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": path} for path in (only or asset_keys(base_url, group))],
        },
        "runConfigData": run_config,
        "mode": "default",
    }
    result = graphql(base_url, mutation, {"params": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(result)
    return result["run"]["runId"]


def run_status(base_url: str, run_id: str) -> str:
    query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
    return graphql(base_url, query, {"id": run_id})["runOrError"]["status"]


def wait_for_run(base_url: str, run_id: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run_status(base_url, run_id)
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    raise TimeoutError(f"run {run_id} still {status} after {timeout} s")


def runs_tagged(base_url: str, key: str, value: str) -> list[dict]:
    query = """query($tags: [ExecutionTag!]) {
      runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId status } } }
    }"""
    data = graphql(base_url, query, {"tags": [{"key": key, "value": value}]})
    return data["runsOrError"]["results"]


def materializations(base_url: str, path: list[str]) -> list[dict]:
    """Every materialization of an asset: run id and text/path metadata."""
    query = """query($key: AssetKeyInput!) {
      assetOrError(assetKey: $key) { ... on Asset { assetMaterializations {
        runId
        metadataEntries {
          label
          ... on TextMetadataEntry { text }
          ... on PathMetadataEntry { path }
          ... on IntMetadataEntry { intValue }
        }
      } } }
    }"""
    data = graphql(base_url, query, {"key": {"path": path}})["assetOrError"]
    return [
        {
            "run_id": m["runId"],
            **{
                e["label"]: e.get("text") or e.get("path") or e.get("intValue")
                for e in m["metadataEntries"]
            },
        }
        for m in data.get("assetMaterializations", [])
    ]


def run_times(base_url: str, run_id: str) -> tuple[float, float]:
    query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { startTime endTime } } }"
    run = graphql(base_url, query, {"id": run_id})["runOrError"]
    return run["startTime"], run["endTime"]


def terminate_run(base_url: str, run_id: str) -> None:
    """The UI's "Terminate" on a run."""
    mutation = """mutation($id: String!) {
      terminateRun(runId: $id) { __typename ... on PythonError { message } }
    }"""
    result = graphql(base_url, mutation, {"id": run_id})["terminateRun"]
    if result["__typename"] != "TerminateRunSuccess":
        raise RuntimeError(result)
