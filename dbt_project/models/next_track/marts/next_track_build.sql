-- One row saying which build made these tables and from which raw file: Dagster checks it
-- against the run's own ingest before training, so no run trains on another run's data.
select
    '{{ var("build_id") }}' as build_id,
    '{{ var("raw_playlists_path") }}' as raw_path,
    '{{ var("raw_fingerprint") }}' as raw_fingerprint,
    current_timestamp as built_at
