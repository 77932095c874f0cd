{#- Whether a validation/test interaction counts as relevant: rating >= var relevance_min_rating
    when the row has a rating; every row when it has none or the var is null. -#}
{% macro is_relevant(rating) -%}
    {%- if var('relevance_min_rating') is none -%}
        true
    {%- else -%}
        coalesce({{ rating }} >= {{ var('relevance_min_rating') }}, true)
    {%- endif -%}
{%- endmacro %}

{#- The reproducible development sample: whole users (default) or single rows, by hash. -#}
{% macro in_interactions_sample(user_id, row_id) -%}
    {%- set unit = var('interactions_sample_unit') -%}
    {%- if unit not in ['user', 'row'] -%}
        {{ exceptions.raise_compiler_error(
            "var interactions_sample_unit must be 'user' or 'row', got '" ~ unit ~ "'") }}
    {%- endif -%}
    {%- set key = user_id if unit == 'user' else 'cast(' ~ row_id ~ ' as varchar)' -%}
    {{ hash_bucket(key, 'sample') }} < {{ var('interactions_sample_percent') }} * 100
{%- endmacro %}

{#- A timestamp at fraction f of the way from t0 to t1. -#}
{% macro time_between(t0, t1, fraction) -%}
    {{ t0 }} + to_microseconds(
        cast(({{ fraction }}) * (epoch_us({{ t1 }}) - epoch_us({{ t0 }})) as bigint))
{%- endmacro %}
