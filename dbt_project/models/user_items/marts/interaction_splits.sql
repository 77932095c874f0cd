-- Every interaction of int_user_interactions in its period (train, validation, test: by time
-- against int_interaction_split_boundaries, or for split_method per_user by its position among
-- the user's own rows), and for validation and test rows whether it is a label, i.e. an item
-- the model should find:
--   cold_user     the user has no interaction in the data a model of that period trains on
--   cold_item     nor has anyone with the item
--   not_relevant  its rating is below var relevance_min_rating
-- A validation model trains on train; the test model is refit on train + validation, so a test
-- row is cold only if neither train nor validation has its user (item). Rows that are not labels
-- stay: they are what the user did, and train + validation feed the refit.
{%- set per_user = var('interactions_split') in ['auto', 'per_user'] %}
with interactions as (
    select * from {{ ref('int_user_interactions') }}
),

boundaries as (
    select * from {{ ref('int_interaction_split_boundaries') }}
),
{%- if per_user %}

-- The user's last test_share of rows (at least one) are test, the validation_share before them
-- validation.
positioned as (
    select
        *,
        row_number() over (partition by user_id order by timestamp, row_id) as position,
        greatest(1, round(user_interactions * {{ var('test_share') }})) as test_rows,
        greatest(1, round(user_interactions * {{ var('validation_share') }})) as validation_rows
    from interactions
),
{%- endif %}

periods as (
    select
        {{ 'positioned' if per_user else 'interactions' }}.*,
        case
            {%- if per_user %}
            when boundaries.split_method = 'per_user' then
                case
                    when position > user_interactions - test_rows then 'test'
                    when position > user_interactions - test_rows - validation_rows
                        then 'validation'
                    else 'train'
                end
            {%- endif %}
            when timestamp < boundaries.validation_start then 'train'
            when timestamp < boundaries.test_start then 'validation'
            else 'test'
        end as split
    from {{ 'positioned' if per_user else 'interactions' }}
    cross join boundaries
),

-- When each user and item first appears: known to a period if seen in an earlier one.
first_seen as (
    select
        *,
        min(case split when 'train' then 0 when 'validation' then 1 else 2 end)
            over (partition by user_id) as user_first_period,
        min(case split when 'train' then 0 when 'validation' then 1 else 2 end)
            over (partition by item_id) as item_first_period,
        case split when 'train' then 0 when 'validation' then 1 else 2 end as period
    from periods
),

labelled as (
    select
        *,
        case
            when split = 'train' then null
            when user_first_period >= period then 'cold_user'
            when item_first_period >= period then 'cold_item'
            when not {{ is_relevant('rating') }} then 'not_relevant'
        end as label_drop_reason
    from first_seen
)

select
    row_id,
    user_id,
    item_id,
    timestamp,
    rating,
    split,
    split != 'train' and label_drop_reason is null as is_label,
    label_drop_reason
from labelled
