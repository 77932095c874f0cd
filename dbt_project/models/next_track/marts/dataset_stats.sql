-- One row of counts that says what cleaning did: rows in, rows dropped by reason,
-- playlists kept and excluded, tracks, and split sizes.
with names as (
    select * from {{ ref('base_playlist_events') }}
),

complete as (
    select
        *,
        user_id is not null and playlist is not null and artist is not null and track is not null
            as is_complete
    from names
),

raw_counts as (
    select
        count(*) as rows_in,
        count(*) filter (where user_id is null) as rows_blank_user,
        count(*) filter (where playlist is null) as rows_blank_playlist,
        count(*) filter (where artist is null and not artist_is_null_like) as rows_blank_artist,
        count(*) filter (where track is null and not track_is_null_like) as rows_blank_track,
        count(*) filter (where artist_is_null_like) as rows_null_like_artist,
        count(*) filter (where track_is_null_like) as rows_null_like_track,
        count(*) filter (where not is_complete) as rows_incomplete,
        {% if var('sample_percent') < 100 -%}
        count(*) filter (
            where is_complete and {{ hash_bucket(pair_key('user_id', 'playlist'), 'sample') }}
                >= {{ var('sample_percent') }} * 100
        ) as rows_outside_sample
        {%- else -%}
        0::bigint as rows_outside_sample
        {%- endif %}
    from complete
),

staged as (
    {{ clean_counts(ref('stg_playlist_events'), {'playlists': 'playlist_key', 'tracks': 'track_key'}) }}
),

splits as (
    select
        count(*) as playlists,
        count(*) filter (where split = 'train') as playlists_train,
        count(*) filter (where split = 'validation') as playlists_validation,
        count(*) filter (where split = 'test') as playlists_test,
        cast(sum(n_tracks) as bigint) as rows_in_sequences
    from {{ ref('playlist_splits') }}
)

select
    raw_counts.*,
    raw_counts.rows_in - raw_counts.rows_incomplete - raw_counts.rows_outside_sample
        - staged.rows_clean as rows_repeated_in_playlist,
    staged.rows_clean,
    staged.playlists_clean,
    staged.tracks_clean,
    splits.playlists,
    staged.playlists_clean - splits.playlists as playlists_too_short,
    splits.playlists_train,
    splits.playlists_validation,
    splits.playlists_test,
    splits.rows_in_sequences,
    cast({{ var('sample_percent') }} as double) as sample_percent
from raw_counts
cross join staged
cross join splits
