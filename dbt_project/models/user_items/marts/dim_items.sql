-- One row per item of the items table: its metadata and how often it occurs in interaction_splits
-- overall and in train (items without interactions after filtering keep zeros).
with items as (
    select * from {{ ref('stg_items') }}
),

counts as (
    select
        item_id,
        count(*) as interactions,
        count(distinct user_id) as users,
        count(*) filter (where split = 'train') as train_interactions
    from {{ ref('interaction_splits') }}
    group by item_id
)

select
    items.item_id,
    items.title,
    items.year,
    items.genres,
    coalesce(counts.interactions, 0) as interactions,
    coalesce(counts.users, 0) as users,
    coalesce(counts.train_interactions, 0) as train_interactions
from items
left join counts using (item_id)
