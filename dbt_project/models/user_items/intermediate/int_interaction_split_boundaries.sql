-- One row: where validation and test begin. var interactions_split chooses how:
--   time_range: test is the last var test_share of the time range, validation the
--               var validation_share before it (the published protocol: a global time split,
--               last 20% of the time range as test; validation the 20% before it)
--   quantile:   the same shares of interactions instead of time
--   dates:      validation from var training_end_date, test from var validation_end_date
-- A row belongs to validation when validation_start <= timestamp < test_start.
{%- set method = var('interactions_split') %}
{%- if method not in ['time_range', 'quantile', 'dates'] %}
    {{ exceptions.raise_compiler_error(
        "var interactions_split must be time_range, quantile or dates, got '" ~ method ~ "'") }}
{%- endif %}
{%- if method == 'dates' and (var('training_end_date') is none or var('validation_end_date') is none) %}
    {{ exceptions.raise_compiler_error(
        "interactions_split: dates needs vars training_end_date and validation_end_date") }}
{%- endif %}
{%- set test_share = var('test_share') %}
{%- set train_share = 1 - var('test_share') - var('validation_share') %}
with interactions as (
    select * from {{ ref('int_user_interactions') }}
),

span as (
    select
        min(timestamp) as first_timestamp,
        max(timestamp) as last_timestamp,
        {%- if method == 'quantile' %}
        quantile_disc(timestamp, {{ train_share }}) as quantile_validation_start,
        quantile_disc(timestamp, {{ 1 - test_share }}) as quantile_test_start,
        {%- endif %}
        count(*) as interactions
    from interactions
)

select
    '{{ method }}' as split_method,
    first_timestamp,
    last_timestamp,
    {%- if method == 'time_range' %}
    {{ time_between('first_timestamp', 'last_timestamp', train_share) }} as validation_start,
    {{ time_between('first_timestamp', 'last_timestamp', 1 - test_share) }} as test_start,
    {%- elif method == 'quantile' %}
    quantile_validation_start as validation_start,
    quantile_test_start as test_start,
    {%- else %}
    cast('{{ var("training_end_date") }}' as timestamp) as validation_start,
    cast('{{ var("validation_end_date") }}' as timestamp) as test_start,
    {%- endif %}
    interactions
from span
