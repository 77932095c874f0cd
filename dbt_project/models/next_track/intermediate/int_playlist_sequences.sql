-- One row per playlist: its tracks in source order. Playlists shorter than
-- var min_playlist_length (3, as in the tutorial) cannot give a query and a label and are left out;
-- dataset_stats counts them.
with events as (
    select * from {{ ref('stg_playlist_events') }}
),

sequences as (
    select
        playlist_key,
        min(user_id) as user_id,
        min(playlist_name) as playlist_name,
        list(track_key order by row_id) as tracks,
        count(*) as n_tracks,
        min(row_id) as first_row_id
    from events
    group by playlist_key
)

select * from sequences
where n_tracks >= {{ var('min_playlist_length') }}
