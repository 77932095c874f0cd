-- One row per track: its names and how often and in how many playlists it occurs.
-- stg_playlist_events keeps a track once per playlist (its unique_combination test), so the
-- playlists are the rows: count(distinct playlist_key) made the model three times slower
-- (docs/benchmarks.md). A key is injective in the names, so any of a track's rows gives them.
with events as (
    select * from {{ ref('stg_playlist_events') }}
)

select
    track_key,
    any_value(artist) as artist,
    any_value(title) as title,
    count(*) as occurrences,
    count(*) as playlists
from events
group by track_key
