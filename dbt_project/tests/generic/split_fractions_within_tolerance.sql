{#- Each split's share of playlists must be within sampling error of its target: four binomial
    standard deviations, and never tighter than two points, so small fixtures are judged fairly. -#}
{% test split_fractions_within_tolerance(model, train, validation) %}
with shares as (
    select
        split,
        count(*) as n,
        sum(count(*)) over () as total
    from {{ model }}
    group by split
),

targets as (
    select 'train' as split, {{ train }} as target
    union all select 'validation', {{ validation }}
    union all select 'test', 1 - {{ train }} - {{ validation }}
)

select targets.split, targets.target, coalesce(shares.n, 0) / max(shares.total) over () as share
from targets
left join shares using (split)
qualify abs(share - target)
    > greatest(0.02, 4 * sqrt(target * (1 - target) / max(shares.total) over ()))
{% endtest %}
