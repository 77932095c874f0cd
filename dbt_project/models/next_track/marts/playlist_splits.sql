-- Deterministic train/validation/test split of playlists by a salted hash of the playlist key:
-- SQL decides it, the same at any scale and on any engine run. Validation and test rows carry the
-- query (all tracks but the last) and the label (the last track) of the next-track task.
with sequences as (
    select * from {{ ref('int_playlist_sequences') }}
),

bucketed as (
    select
        *,
        {{ hash_bucket('playlist_key', var('split_salt')) }} as split_bucket
    from sequences
),

assigned as (
    select
        *,
        case
            when split_bucket < {{ var('train_fraction') }} * 10000 then 'train'
            when split_bucket < ({{ var('train_fraction') }} + {{ var('validation_fraction') }}) * 10000
                then 'validation'
            else 'test'
        end as split
    from bucketed
)

select
    playlist_key,
    split,
    split_bucket,
    first_row_id,
    n_tracks,
    tracks,
    case when split != 'train' then tracks[1:n_tracks - 1] end as query,
    case when split != 'train' then tracks[n_tracks] end as label
from assigned
