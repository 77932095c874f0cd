-- Cleaned playlist rows: names trimmed, rows with a blank user, playlist, artist or track, or a
-- null-like artist or track ('null', 'N/A'... see base_playlist_events) dropped, optional
-- reproducible sampling of playlists, and a repeated track within a playlist kept only at its
-- first position (a repeat cannot be a "next" track: recommenders exclude what was heard).
-- A table, not a view: three models and every test read it; recomputing the keys, the sample
-- hash and the first-occurrence window for each made the build grow far faster than the data.
{{ config(materialized='table') }}

with trimmed as (
    select * from {{ ref('base_playlist_events') }}
),

complete as (
    select
        *,
        {{ pair_key('artist', 'track') }} as track_key,
        {{ pair_key('user_id', 'playlist') }} as playlist_key
    from trimmed
    where user_id is not null and playlist is not null and artist is not null and track is not null
),

sampled as (
    select * from complete
    {% if var('sample_percent') < 100 -%}
    where {{ hash_bucket('playlist_key', 'sample') }} < {{ var('sample_percent') }} * 100
    {%- endif %}
),

first_occurrences as (
    select * from sampled
    qualify row_number() over (partition by playlist_key, track_key order by row_id) = 1
)

select
    row_id,
    playlist_key,
    track_key,
    user_id,
    playlist as playlist_name,
    artist,
    track as title
from first_occurrences
