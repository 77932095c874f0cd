-- Every interaction of int_user_interactions in its time period (train, validation, test), and
-- for validation and test rows whether it is a label, i.e. an item the model should find:
--   cold_user     the user has no interaction in the data a model of that period trains on
--   cold_item     nor has anyone with the item
--   not_relevant  its rating is below var relevance_min_rating
-- A validation model trains on train; the test model is refit on train + validation, so a test
-- row is cold only if neither train nor validation has its user (item). Rows that are not labels
-- stay: they are what the user did, and train + validation feed the refit.
with interactions as (
    select * from {{ ref('int_user_interactions') }}
),

boundaries as (
    select * from {{ ref('int_interaction_split_boundaries') }}
),

periods as (
    select
        interactions.*,
        case
            when timestamp < boundaries.validation_start then 'train'
            when timestamp < boundaries.test_start then 'validation'
            else 'test'
        end as split
    from interactions
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
