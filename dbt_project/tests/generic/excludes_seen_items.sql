{#- No recommended (user_id, item_id) is one the user already has in `seen`. -#}
{% test excludes_seen_items(model, seen) %}
select recommended.user_id, recommended.item_id
from {{ model }} as recommended
join {{ seen }} as had
    on recommended.user_id = had.user_id and recommended.item_id = had.item_id
{% endtest %}
