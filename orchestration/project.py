"""The dbt project as Dagster sees it. No @dbt_assets here, so that
``dagster-dbt project prepare-and-package --file orchestration/project.py`` can build the manifest
before the definitions (which need it at import) are loaded."""

from dagster_dbt import DbtProject

from orchestration.settings import DBT_PROFILES_DIR, DBT_PROJECT_DIR, DBT_TARGET

dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROFILES_DIR, target=DBT_TARGET
)
# Under `dagster dev` only: re-parse so edits to the SQL show up without a manual step.
dbt_project.prepare_if_dev()
