{#- The raw files are registered as views in schema raw, so dbt sources are real relations
    (listed by `dbt docs generate`, typed in the catalog). A selected node whose raw file is
    missing fails the invocation early, naming the path. -#}
{% macro register_raw_sources() %}
    {% if execute %}
        {{ register_raw_view('playlist_events', var('raw_playlists_path'), 'next_track',
            "Materialize raw_playlist_events first (make run), run dbt from the repository root, "
            ~ "or set NEXT_TRACK_DATA_DIR.") }}
        {% set interactions_hint = "Ingest interactions first (ml.sources.interactions."
            ~ "ingest_interactions into $NEXT_TRACK_DATA_DIR/raw), run dbt from the repository "
            ~ "root, or set NEXT_TRACK_DATA_DIR." %}
        {{ register_raw_view('interactions', var('raw_interactions_path'), 'user_items',
            interactions_hint) }}
        {{ register_raw_view('items', var('raw_items_path'), 'user_items', interactions_hint) }}
    {% endif %}
{% endmacro %}

{#- use_case: the model folder (fqn[1]) whose nodes read this file. -#}
{% macro register_raw_view(name, path, use_case, hint) %}
    {% set found = run_query("select count(*) from glob('" ~ path ~ "')").columns[0].values()[0] %}
    {% if found > 0 %}
        {% do run_query("create schema if not exists raw") %}
        {% do run_query("create or replace view raw." ~ name
            ~ " as select * from read_parquet('" ~ path ~ "')") %}
    {% else %}
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
