-- Item metadata with trimmed ids and titles; an id that appears twice once trimmed keeps the
-- entry with the lowest raw id.
with source as (
    select * from {{ source('raw_user_items', 'items') }}
),

trimmed as (
    select
        {{ clean_name('item_id') }} as item_id,
        item_id as raw_item_id,
        {{ clean_name('title') }} as title,
        cast(year as integer) as year,
        cast(genres as varchar[]) as genres
    from source
)

select item_id, title, year, genres
from trimmed
where item_id is not null
qualify row_number() over (partition by item_id order by raw_item_id) = 1
