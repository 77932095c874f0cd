{#- Every key has the same number of rows, ranked 1..n without gaps or repeats. -#}
{% test rows_per_key(model, key, rank) %}
with per_key as (
    select
        {{ key }},
        count(*) as n,
        count(distinct {{ rank }}) as ranks,
        min({{ rank }}) as lowest,
        max({{ rank }}) as highest
    from {{ model }}
    group by {{ key }}
)

select *
from per_key
where n != (select max(n) from per_key)
    or ranks != n or lowest != 1 or highest != n
{% endtest %}
