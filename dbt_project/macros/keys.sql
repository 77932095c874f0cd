{#- Names are trimmed of surrounding white space; blank becomes null. -#}
{% macro clean_name(expr) -%}
    nullif(regexp_replace({{ expr }}, '^\s+|\s+$', '', 'g'), '')
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
