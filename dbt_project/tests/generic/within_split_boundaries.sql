{#- Rows whose period disagrees with the one-row boundaries table: a train row at or after
    validation_start, a validation row outside [validation_start, test_start), a test row before
    test_start. -#}
{% test within_split_boundaries(model, boundaries) %}
select rows.*
from {{ model }} as rows
cross join {{ boundaries }} as b
where (rows.split = 'train' and rows.timestamp >= b.validation_start)
    or (rows.split = 'validation'
        and (rows.timestamp < b.validation_start or rows.timestamp >= b.test_start))
    or (rows.split = 'test' and rows.timestamp < b.test_start)
{% endtest %}
