-- Cleaned interactions: ids trimmed, rows with a blank user or item or no timestamp dropped,
-- an optional reproducible sample (var interactions_sample_percent, by user or by row), and each
-- user-item pair kept once, at its first interaction (earliest timestamp, then row_id). Every
-- family recommends only items a user has not interacted with, so a repeat could never be a hit;
-- the first rating is the one kept. interaction_stats counts every drop.
-- A table: what every user has, users below min_user_interactions included, is what
-- user_recommendations excludes and scores them from, read after the raw file may be gone.
{{ config(materialized='table') }}

with source as (
    select * from {{ source('raw_user_items', 'interactions') }}
),

trimmed as (
    select
        row_id,
        {{- clean_names(['user_id', 'item_id']) }},
        cast(timestamp as timestamp) as timestamp,
        cast(rating as double) as rating
    from source
),

complete as (
    select * from trimmed
    where user_id is not null and item_id is not null and timestamp is not null
),

sampled as (
    select * from complete
    where {{ in_interactions_sample('user_id', 'row_id') }}
),

first_interactions as (
    select * from sampled
    qualify row_number() over (partition by user_id, item_id order by timestamp, row_id) = 1
)

select row_id, user_id, item_id, timestamp, rating
from first_interactions
