{#- Fails early, naming the path, when the raw Parquet is not where dbt looks for it. -#}
{% macro require_raw_events() %}
    {% if execute %}
        {% set path = env_var('NEXT_TRACK_DATA_DIR', 'data') ~ '/raw/playlist_events.parquet' %}
        {% set found = run_query("select count(*) from glob('" ~ path ~ "')").columns[0].values()[0] %}
        {% if found == 0 %}
            {{ exceptions.raise_compiler_error(
                "Raw playlist events not found at '" ~ path ~ "'. Materialize raw_playlist_events "
                ~ "first (make run), run dbt from the repository root, or set NEXT_TRACK_DATA_DIR."
            ) }}
        {% endif %}
    {% endif %}
{% endmacro %}
