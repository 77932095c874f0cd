-- One row of counts that says what cleaning, filtering and splitting did: rows in, rows dropped
-- by reason, users and items kept, the split boundaries, and per period its rows, its labels and
-- the rows that are not labels by reason. rows_in = rows_incomplete + rows_outside_sample
-- + rows_repeated + rows_clean, and rows_clean = rows_of_users_below_min + rows.
with source as (
    select
        {{- clean_names(['user_id', 'item_id']) }},
        timestamp,
        row_id
    from {{ source('raw_user_items', 'interactions') }}
),

raw_counts as (
    select
        count(*) as rows_in,
        count(*) filter (where user_id is null) as rows_blank_user,
        count(*) filter (where item_id is null) as rows_blank_item,
        count(*) filter (where timestamp is null) as rows_null_timestamp,
        count(*) filter (where user_id is null or item_id is null or timestamp is null)
            as rows_incomplete,
        count(*) filter (
            where user_id is not null and item_id is not null and timestamp is not null
            and not ({{ in_interactions_sample('user_id', 'row_id') }})
        ) as rows_outside_sample
    from source
),

staged as (
    {{ clean_counts(ref('stg_interactions'), {'users': 'user_id', 'items': 'item_id'}) }}
),

kept as (
    select count(distinct user_id) as users_kept
    from {{ ref('int_user_interactions') }}
),

splits as (
    select
        count(*) as rows,
        count(distinct user_id) as users,
        count(distinct item_id) as items,
        count(*) filter (where split = 'train') as train_rows,
        count(distinct user_id) filter (where split = 'train') as train_users,
        count(distinct item_id) filter (where split = 'train') as train_items,
        {%- for period in ['validation', 'test'] %}
        count(*) filter (where split = '{{ period }}') as {{ period }}_rows,
        count(*) filter (where split = '{{ period }}' and is_label) as {{ period }}_labels,
        count(distinct user_id) filter (where split = '{{ period }}' and is_label)
            as {{ period }}_users,
        {%- for reason in ['cold_user', 'cold_item', 'not_relevant'] %}
        count(*) filter (where split = '{{ period }}' and label_drop_reason = '{{ reason }}')
            as {{ period }}_{{ reason }}_rows,
        {%- endfor %}
        {%- endfor %}
    from {{ ref('interaction_splits') }}
),

boundaries as (
    select * from {{ ref('int_interaction_split_boundaries') }}
)

select
    raw_counts.*,
    raw_counts.rows_in - raw_counts.rows_incomplete - raw_counts.rows_outside_sample
        - staged.rows_clean as rows_repeated,
    staged.rows_clean,
    staged.users_clean,
    staged.items_clean,
    staged.users_clean - kept.users_kept as users_below_min,
    staged.rows_clean - splits.rows as rows_of_users_below_min,
    splits.*,
    boundaries.split_method,
    boundaries.split_reason,
    boundaries.first_timestamp,
    boundaries.validation_start,
    boundaries.test_start,
    boundaries.last_timestamp,
    {{ var('min_user_interactions') }} as min_user_interactions,
    cast({{ var('interactions_sample_percent') }} as double) as sample_percent
from raw_counts
cross join staged
cross join kept
cross join splits
cross join boundaries
