"""dagster-celery on Redis: the executor the cluster profile's jobs use, and the Celery app its
workers run (`celery -A orchestration.cluster.celery_app worker`); both from the same settings.

- ``task_acks_late`` and ``task_reject_on_worker_lost``: a task is acknowledged only once its
  step finished, so a worker process killed mid-step (kill -9, out of memory) hands the step back
  to the queue, and another worker runs it again.
- Redis serves one list per queue in the order tasks were sent (``priority_steps`` [0]): Dagster
  submits ready steps highest ``dagster-celery/priority`` first, and that order is kept. Kombu's
  Redis transport would otherwise serve a lower number first, the opposite of Dagster's order.
- ``visibility_timeout``: a task taken by a worker that vanished whole (the machine gone) is
  given to another worker after this long; it must exceed the longest step.
"""

from __future__ import annotations

import os

from dagster_celery import celery_executor
from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

VISIBILITY_TIMEOUT_SECONDS = 4 * 3600

SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_transport_options": {
        **DEFAULT_CONFIG["broker_transport_options"],
        "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
        "priority_steps": [0],
    },
    "result_backend_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
    "result_expires": 7 * 24 * 3600,
}

cluster_executor = celery_executor.configured(
    {
        "broker": {"env": "NEXT_TRACK_CELERY_BROKER"},
        "backend": {"env": "NEXT_TRACK_CELERY_BACKEND"},
        "config_source": SETTINGS,
    },
    name="celery",
)


def worker_app(broker: str, backend: str):
    """The workers' app: the executor's settings, on ``broker`` and ``backend``."""
    app = make_app(
        {
            "broker": broker,
            "backend": backend,
            "include": [],
            "config_source": dict_wrapper({**DEFAULT_CONFIG, **SETTINGS}),
        }
    )
    create_task(app)
    return app


# `celery -A orchestration.cluster.celery_app worker` finds this; the executor never builds it.
app = (
    worker_app(os.environ["NEXT_TRACK_CELERY_BROKER"], os.environ["NEXT_TRACK_CELERY_BACKEND"])
    if "NEXT_TRACK_CELERY_BROKER" in os.environ
    else None
)
