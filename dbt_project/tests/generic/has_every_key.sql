{#- Every value of `key` in `among` has rows in the model (a serving table covers every user). -#}
{% test has_every_key(model, key, among) %}
select distinct wanted.{{ key }}
from {{ among }} as wanted
left join {{ model }} as served on served.{{ key }} = wanted.{{ key }}
where served.{{ key }} is null
{% endtest %}
