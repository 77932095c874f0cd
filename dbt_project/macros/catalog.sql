{#- `dbt docs generate` runs no on-run-start hook, so before the catalog is read what a build
    would register is attached here: the serving tables' files (or their empty stand-ins), and a
    raw view for each raw file a build has not registered yet (existing views are left as they
    are). Then dbt-duckdb's own catalog query. -#}
{% macro catalog_sources() %}
    {{ attach_serving_tables() }}
    {% do create_raw_view('playlist_events', raw_playlists_path(), replace=false) %}
    {% do create_raw_view('interactions', raw_interactions_path(), replace=false) %}
    {% do create_raw_view('items', raw_items_path(), replace=false) %}
{% endmacro %}

{% macro duckdb__get_catalog(information_schema, schemas) -%}
    {% do catalog_sources() %}
    {{ return(dbt.duckdb__get_catalog(information_schema, schemas)) }}
{%- endmacro %}

{% macro duckdb__get_catalog_relations(information_schema, relations) -%}
    {% do catalog_sources() %}
    {{ return(dbt.duckdb__get_catalog_relations(information_schema, relations)) }}
{%- endmacro %}
