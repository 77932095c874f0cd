{#- Names are trimmed of surrounding white space; blank becomes null. -#}
{% macro clean_name(expr) -%}
    nullif(regexp_replace({{ expr }}, '^\s+|\s+$', '', 'g'), '')
{%- endmacro %}

{#- Each column cleaned as clean_name does, under its own name: a select list. -#}
{% macro clean_names(columns) -%}
    {%- for column in columns %}
        {{ clean_name(column) }} as {{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- What cleaning kept of a relation: its rows and its distinct keys, each <name>_clean. -#}
{% macro clean_counts(relation, distinct_keys) -%}
    select
        count(*) as rows_clean
        {%- for name, column in distinct_keys.items() %},
        count(distinct {{ column }}) as {{ name }}_clean
        {%- endfor %}
    from {{ relation }}
{%- endmacro %}

{#- A readable key for a pair of names: both parts escaped ('\' -> '\\', '|' -> '\|') and joined
    by '|||', so a name that itself contains '|||' can never collide with another pair. -#}
{% macro pair_key(left, right) -%}
    replace(replace({{ left }}, '\', '\\'), '|', '\|')
    || '|||'
    || replace(replace({{ right }}, '\', '\\'), '|', '\|')
{%- endmacro %}

{#- A stable bucket in [0, 10000) from a salted md5 of the key: the same at any scale. -#}
{% macro hash_bucket(expr, salt) -%}
    cast(md5_number('{{ salt }}' || '/' || {{ expr }}) % 10000 as integer)
{%- endmacro %}
