"""Two-step jobs for the cluster test: a value handed from a step pinned to worker-1 to a step
pinned to worker-2 (each worker also listens on a Celery queue of its own name), through a given
run store. Through the bucket it arrives; through a worker's own data folder it cannot."""

import os

import dagster as dg

from orchestration.cluster.celery_app import cluster_executor
from orchestration.cluster.state import BUCKET, REPO_ROOT
from orchestration.io_manager import RunStoreIOManager
from orchestration.storage import RunStorage


@dg.op(tags={"dagster-celery/queue": "worker-1"})
def produce() -> dict:
    return {"written_by": os.environ.get("NEXT_TRACK_WORKER")}


@dg.op(tags={"dagster-celery/queue": "worker-2"})
def consume(value: dict) -> dict:
    return {**value, "read_by": os.environ.get("NEXT_TRACK_WORKER")}


STORES = {
    # Each worker's data folder is a private tmpfs: what one writes there, no other sees.
    "private_folders": (REPO_ROOT / "data").as_uri(),
    "bucket": f"s3://{BUCKET}",
}


def probe_job(through: str) -> dg.JobDefinition:
    """Rebuilt by name on each worker (dagster.build_reconstructable_job)."""

    @dg.job(
        name=f"handover_probe_through_{through}",
        executor_def=cluster_executor,
        resource_defs={"io_manager": RunStoreIOManager(storage=RunStorage(url=STORES[through]))},
    )
    def handover_probe():
        consume(produce())

    return handover_probe


def reconstructable_probe(through: str):
    return dg.build_reconstructable_job("tests.cluster_probe", "probe_job", (through,))
