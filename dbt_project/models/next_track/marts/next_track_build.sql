-- One row saying which build made these tables and from which raw file: Dagster checks it
-- against the run's own ingest before training, so no run trains on another run's data.
select
    '{{ env_var("NEXT_TRACK_BUILD_ID", "manual") }}' as build_id,
    '{{ raw_playlists_path() }}' as raw_path,
    '{{ env_var("NEXT_TRACK_RAW_FINGERPRINT", "unknown") }}' as raw_fingerprint,
    current_timestamp as built_at,
    cast({{ var('sample_percent') }} as double) as sample_percent,
    '{{ var("split_salt") }}' as split_salt
