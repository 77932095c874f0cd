{#- Rows whose period disagrees with the one-row boundaries table: a train row at or after
    validation_start, a validation row outside [validation_start, test_start), a test row before
    test_start; for split_method per_user (no global boundaries), a row of a user that comes
    after one of a later period (by timestamp, then row_id). -#}
{% test within_split_boundaries(model, boundaries) %}
with ordered as (
    select
        rows.*,
        b.split_method,
        b.validation_start,
        b.test_start,
        case rows.split when 'train' then 0 when 'validation' then 1 else 2 end as period,
        max(case rows.split when 'train' then 0 when 'validation' then 1 else 2 end) over (
            partition by rows.user_id order by rows.timestamp, rows.row_id
            rows between unbounded preceding and 1 preceding
        ) as latest_earlier_period
    from {{ model }} as rows
    cross join {{ boundaries }} as b
)

select *
from ordered
where (split_method = 'per_user' and period < latest_earlier_period)
    or (split_method != 'per_user' and (
        (split = 'train' and timestamp >= validation_start)
        or (split = 'validation' and (timestamp < validation_start or timestamp >= test_start))
        or (split = 'test' and timestamp < test_start)
    ))
{% endtest %}
