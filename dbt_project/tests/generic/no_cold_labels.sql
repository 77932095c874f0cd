{#- Labels whose user or item has no interaction in what the period's model trains on: train for
    validation labels, train and validation for test labels. -#}
{% test no_cold_labels(model) %}
with labels as (
    select * from {{ model }} where is_label
)

select labels.*
from labels
where not exists (
        select 1 from {{ model }} as seen
        where seen.user_id = labels.user_id
            and (seen.split = 'train' or (labels.split = 'test' and seen.split = 'validation'))
    )
    or not exists (
        select 1 from {{ model }} as seen
        where seen.item_id = labels.item_id
            and (seen.split = 'train' or (labels.split = 'test' and seen.split = 'validation'))
    )
{% endtest %}
