-- One row: how the interactions are split and where validation and test begin. var
-- interactions_split chooses how:
--   auto:       per_user when the timestamps are only row order (every timestamp is 1970-01-01
--               + row_id seconds, as the playlist rows get: a global cut by time would put whole
--               users after it), else time_range
--   time_range: test is the last var test_share of the time range, validation the
--               var validation_share before it (the published protocol: a global time split,
--               last 20% of the time range as test; validation the 20% before it)
--   quantile:   the same shares of interactions instead of time
--   dates:      validation from var training_end_date, test from var validation_end_date
--   per_user:   each user's last var test_share of rows (time, then row order) are test, the
--               var validation_share before them validation: no global boundaries (null)
-- A row belongs to validation when validation_start <= timestamp < test_start.
{%- set requested = var('interactions_split') %}
{%- if requested not in ['auto', 'time_range', 'quantile', 'dates', 'per_user'] %}
    {{ exceptions.raise_compiler_error(
        "var interactions_split must be auto, time_range, quantile, dates or per_user, got '"
        ~ requested ~ "'") }}
{%- endif %}
{%- if requested == 'dates' and (var('training_end_date') is none or var('validation_end_date') is none) %}
    {{ exceptions.raise_compiler_error(
        "interactions_split: dates needs vars training_end_date and validation_end_date") }}
{%- endif %}
{%- set time_method = requested if requested in ['quantile', 'dates'] else 'time_range' %}
{%- set test_share = var('test_share') %}
{%- set train_share = 1 - var('test_share') - var('validation_share') %}
with interactions as (
    select * from {{ ref('int_user_interactions') }}
),

span as (
    select
        min(timestamp) as first_timestamp,
        max(timestamp) as last_timestamp,
        {%- if time_method == 'quantile' %}
        quantile_disc(timestamp, {{ train_share }}) as quantile_validation_start,
        quantile_disc(timestamp, {{ 1 - test_share }}) as quantile_test_start,
        {%- endif %}
        coalesce(bool_and(epoch_us(timestamp) = row_id * 1000000), false)
            as timestamps_are_row_order,
        count(*) as interactions
    from interactions
),

resolved as (
    select
        *,
        {%- if requested == 'auto' %}
        case when timestamps_are_row_order then 'per_user' else 'time_range' end as split_method,
        case
            when timestamps_are_row_order
                then 'auto: the timestamps are only row order (1970-01-01 + row_id seconds), '
                    || 'so each user''s last rows are held out'
            else 'auto: real timestamps, so a global time split'
        end as split_reason
        {%- else %}
        '{{ requested }}' as split_method,
        'var interactions_split' as split_reason
        {%- endif %}
    from span
)

{%- if time_method == 'time_range' %}
    {%- set validation_start = time_between('first_timestamp', 'last_timestamp', train_share) %}
    {%- set test_start = time_between('first_timestamp', 'last_timestamp', 1 - test_share) %}
{%- elif time_method == 'quantile' %}
    {%- set validation_start, test_start = 'quantile_validation_start', 'quantile_test_start' %}
{%- else %}
    {%- set validation_start = "cast('" ~ var('training_end_date') ~ "' as timestamp)" %}
    {%- set test_start = "cast('" ~ var('validation_end_date') ~ "' as timestamp)" %}
{%- endif %}
select
    split_method,
    split_reason,
    first_timestamp,
    last_timestamp,
    case when split_method != 'per_user' then {{ validation_start }} end as validation_start,
    case when split_method != 'per_user' then {{ test_start }} end as test_start,
    interactions
from resolved
