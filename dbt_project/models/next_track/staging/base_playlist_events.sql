-- Raw playlist rows with every name trimmed (blank -> null), and an artist or track spelled like a
-- missing value ('null', 'NaN', 'N/A', 'None'...: var null_like_names, matched exactly after trim,
-- case-insensitively) or made only of punctuation, a placeholder such as '-', '--' or '...'
-- (var punctuation_only_names_missing), made null too, flagged so dataset_stats counts them
-- apart from blanks.
-- The one definition both stg_playlist_events and dataset_stats read. A table, computed once:
-- as a view (or ephemeral) every reader and every test recomputed the trimming of every raw row,
-- which took minutes at the full Kaggle file's 12.9M rows.
{{ config(materialized='table') }}

{%- set null_like_names = var(
    'null_like_names',
    ['null', 'nan', 'n/a', 'none', 'nil', 'undefined', '#n/a', '(null)']
) %}
{%- set punctuation_only = var('punctuation_only_names_missing', true) %}
{%- set spellings -%}
    ({% for name in null_like_names %}'{{ name | lower | replace("'", "''") }}'{{ ', ' if not loop.last }}{% endfor %})
{%- endset %}

with source as (
    select * from {{ source('raw', 'playlist_events') }}
),

trimmed as (
    select
        row_id,
        {{- clean_names(['user_id', 'artist', 'track', 'playlist']) }}
    from source
),

flagged as (
    select
        *,
        {%- for column in ['artist', 'track'] %}
        coalesce(
            {% if null_like_names %}lower({{ column }}) in {{ spellings }}{% else %}false{% endif %}
            {%- if punctuation_only %}
            -- \p{P}: Unicode punctuation, dashes included; trimmed, so never only spaces
            or regexp_full_match({{ column }}, '[\p{P}\s]+')
            {%- endif %},
            false
        ) as {{ column }}_is_null_like{{ ',' if not loop.last }}
        {%- endfor %}
    from trimmed
)

select
    row_id,
    user_id,
    playlist,
    case when artist_is_null_like then null else artist end as artist,
    case when track_is_null_like then null else track end as track,
    artist_is_null_like,
    track_is_null_like
from flagged
