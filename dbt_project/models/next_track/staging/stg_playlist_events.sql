-- Cleaned playlist rows: names trimmed, rows with a blank user, playlist, artist or track, or a
-- null-like artist or track ('null', 'N/A'... see base_playlist_events) dropped, optional
-- reproducible sampling of playlists, and a repeated track within a playlist kept only at its
-- first position (a repeat cannot be a "next" track: recommenders exclude what was heard).
-- A table, not a view: three models and every test read it; recomputing the keys, the sample
-- hash and the first occurrences for each made the build grow far faster than the data.
{{ config(materialized='table') }}

-- A repeat is dropped by grouping the raw names (the keys are injective in them) and keeping the
-- smallest row_id, the keys built on the groups only: DuckDB ran the former row_number() window
-- over the keys as arg_min of every column per key pair (EXPLAIN ANALYZE: docs/benchmarks.md).
with first_occurrences as (
    select min(row_id) as row_id, user_id, playlist, artist, track
    from {{ ref('base_playlist_events') }}
    where user_id is not null and playlist is not null and artist is not null and track is not null
    group by user_id, playlist, artist, track
),

keyed as (
    select
        *,
        {{ pair_key('artist', 'track') }} as track_key,
        {{ pair_key('user_id', 'playlist') }} as playlist_key
    from first_occurrences
),

sampled as (
    select * from keyed
    {% if var('sample_percent') < 100 -%}
    where {{ hash_bucket('playlist_key', 'sample') }} < {{ var('sample_percent') }} * 100
    {%- endif %}
)

select
    row_id,
    playlist_key,
    track_key,
    user_id,
    playlist as playlist_name,
    artist,
    track as title
from sampled
