"""The cluster profile: the pipeline on workers that share nothing but a broker, a database and an
object store, every service started on 127.0.0.1 by `make cluster-up` and stopped by
`make cluster-down`.

- PostgreSQL (the Dagster instance's storage and the MLflow tracking server's backend; locks
  between machines), Redis (Celery's broker and result backend), SeaweedFS (an S3 bucket for run
  data and MLflow artifacts), an MLflow tracking server, Dagster's daemon and webserver;
- Celery workers, each in its own mount namespace with private tmpfs over the data, temporary and
  state folders, so that a hand-over reaches another worker through the bucket or not at all.

State (ports, generated credentials, service data and logs) lives in a git-ignored folder,
``.cluster/`` by default (``NEXT_TRACK_CLUSTER_DIR``).
"""
