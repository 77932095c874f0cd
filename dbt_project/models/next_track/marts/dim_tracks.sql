-- One row per track: its names and how often and in how many playlists it occurs.
with events as (
    select * from {{ ref('stg_playlist_events') }}
)

select
    track_key,
    min(artist) as artist,
    min(title) as title,
    count(*) as occurrences,
    count(distinct playlist_key) as playlists
from events
group by track_key
