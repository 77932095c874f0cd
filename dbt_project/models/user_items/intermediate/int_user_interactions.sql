-- Interactions of users with at least var min_user_interactions clean interactions (20 in the
-- published protocol), counted over the whole history before any split.
with interactions as (
    select * from {{ ref('stg_interactions') }}
),

counted as (
    select *, count(*) over (partition by user_id) as user_interactions
    from interactions
)

select row_id, user_id, item_id, timestamp, rating, user_interactions
from counted
where user_interactions >= {{ var('min_user_interactions') }}
