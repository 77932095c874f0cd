{#- Run-specific values come from environment variables, not --vars: dbt re-parses the whole
    project whenever --vars change, which cost more than the build at small scale. Dagster sets
    them to the file its run ingested; plain `dbt build` reads the published file. -#}
{% macro raw_path(variable, file) -%}
    {{ env_var(variable, env_var('NEXT_TRACK_DATA_DIR', 'data') ~ '/raw/' ~ file) }}
{%- endmacro %}

{% macro raw_playlists_path() -%}
    {{ raw_path('NEXT_TRACK_RAW_PLAYLISTS', 'playlist_events.parquet') }}
{%- endmacro %}

{#- The raw files are registered as views in schema raw, so dbt sources are real relations
    (listed by `dbt docs generate`, typed in the catalog). A selected node whose raw file is
    missing fails the invocation early, naming the path. -#}
{% macro register_raw_sources() %}
    {% if execute %}
        {{ attach_serving_tables() }}
        {{ register_raw_view('playlist_events', raw_playlists_path(), 'next_track',
            "Materialize raw_playlist_events first (make run), run dbt from the repository root, "
            ~ "or set NEXT_TRACK_DATA_DIR.") }}
        {% set interactions_hint = "Ingest interactions first (ml.sources.interactions."
            ~ "ingest_interactions into $NEXT_TRACK_DATA_DIR/raw), run dbt from the repository "
            ~ "root, or set NEXT_TRACK_DATA_DIR." %}
        {{ register_raw_view('interactions', raw_interactions_path(), 'user_items',
            interactions_hint) }}
        {{ register_raw_view('items', raw_items_path(), 'user_items', interactions_hint) }}
    {% endif %}
{% endmacro %}

{% macro raw_interactions_path() -%}
    {{ raw_path('NEXT_TRACK_RAW_INTERACTIONS', 'interactions.parquet') }}
{%- endmacro %}

{% macro raw_items_path() -%}
    {{ raw_path('NEXT_TRACK_RAW_ITEMS', 'items.parquet') }}
{%- endmacro %}

{#- use_case: the model folder (fqn[1]) whose nodes read this file. -#}
{% macro register_raw_view(name, path, use_case, hint) %}
    {% if not create_raw_view(name, path, replace=true) %}
        {% set needed = [] %}
        {% for unique_id in selected_resources %}
            {% set node = graph.nodes.get(unique_id) or graph.sources.get(unique_id) %}
            {% if node and node.fqn | length > 1 and node.fqn[1] == use_case %}
                {% do needed.append(unique_id) %}
            {% endif %}
        {% endfor %}
        {% if needed %}
            {{ exceptions.raise_compiler_error(
                "Raw " ~ name ~ " not found at '" ~ path ~ "'. " ~ hint) }}
        {% endif %}
    {% endif %}
{% endmacro %}

{#- raw.<name> as a view of the Parquet file at `path`, replacing one there or (replace false)
    leaving it as it is; false, and nothing done, when there is no such file. -#}
{% macro create_raw_view(name, path, replace) %}
    {% set found = run_query("select count(*) from glob('" ~ path ~ "')").columns[0].values()[0] %}
    {% if found > 0 %}
        {% do run_query("create schema if not exists raw") %}
        {% do run_query("create " ~ ("or replace view " if replace else "view if not exists ")
            ~ "raw." ~ name ~ " as select * from read_parquet('" ~ path ~ "')") %}
    {% endif %}
    {{ return(found > 0) }}
{% endmacro %}

{#- Precomputed recommendation tables (one DuckDB file each, written by Dagster assets) are
    attached read-only under their own name. Before the first one is written, an empty table of
    the same columns stands in, so `dbt build` and its tests work on a fresh machine. -#}
{% macro attach_serving_tables() %}
    {% set folder = env_var('NEXT_TRACK_SERVING_DIR', env_var('NEXT_TRACK_DATA_DIR', 'data') ~ '/serving') %}
    {% set built_from = ', model_name varchar, model_version varchar, data_fingerprint varchar' %}
    {% set tables = {
        'track_recommendations': 'track_key varchar, rank integer, next_track_key varchar, '
            ~ 'artist varchar, title varchar, score double, from_popularity boolean' ~ built_from,
        'user_recommendations': 'user_id varchar, rank integer, item_id varchar, '
            ~ 'title varchar, score double, from_popularity boolean, based_on varchar'
            ~ built_from,
    } %}
    {% for name, columns in tables.items() %}
        {% set path = folder ~ '/' ~ name ~ '.duckdb' %}
        {% set found = run_query("select count(*) from glob('" ~ path ~ "')").columns[0].values()[0] %}
        {% if found > 0 %}
            {% do run_query("attach if not exists '" ~ path ~ "' as " ~ name ~ " (read_only)") %}
        {% else %}
            {% do run_query("attach if not exists ':memory:' as " ~ name) %}
            {% do run_query("create table if not exists " ~ name ~ ".main." ~ name ~ " (" ~ columns ~ ")") %}
        {% endif %}
    {% endfor %}
{% endmacro %}
