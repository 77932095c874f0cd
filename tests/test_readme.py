"""The README as a guide that stays true: its first commands are `make run` and `make test`, its
asset tables name every asset the Definitions hold, every run-config field it and docs/ name
exists, and every page under docs/ it links to exists."""

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    """The text of ``## heading`` up to the next second-level heading."""
    start = README.index(f"\n## {heading}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else len(README)]


def test_the_first_commands_are_make_run_and_make_test():
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in first_block.splitlines()]
    assert commands == ["make run", "make test"]


def test_the_asset_tables_name_every_asset_of_the_definitions(prepared_dbt_project):
    from orchestration.definitions import defs

    keys = defs.get_repository_def().asset_graph.get_all_asset_keys()
    assets = {key.to_user_string() for key in keys}
    table_rows = [
        line for line in section("The asset graph").splitlines() if line.startswith("| `")
    ]
    named = {name for row in table_rows for name in re.findall(r"`([^`]+)`", row.split(" | ")[0])}
    assert {"base_playlist_events", "next_track_build", "user_recommendations"} <= assets
    assert sorted(assets - named) == []
    assert sorted(named - assets) == []  # nor one that is not in the graph


def test_every_run_config_field_named_in_the_docs_exists(prepared_dbt_project):
    """``<step>.config.<field>``, as the launchpad's run config nests it, for a step and a
    field of the Definitions."""
    from orchestration.definitions import defs

    schemas = {
        asset.node_def.name: asset.node_def.config_schema
        for asset in defs.get_repository_def().assets_defs_by_key.values()
    }
    fields = {
        step: set(schema.config_type.fields)
        for step, schema in schemas.items()
        if schema and hasattr(schema.config_type, "fields")
    }
    pages = [README, *(p.read_text(encoding="utf-8") for p in (REPO_ROOT / "docs").glob("*.md"))]
    named = {m for page in pages for m in re.findall(r"`(\w+)\.config\.(\w+)`", page)}
    assert len(named) >= 5
    assert sorted((step, f) for step, f in named if f not in fields.get(step, ())) == []


def test_every_docs_link_resolves():
    links = re.findall(r"\]\((docs/[^)#\s]+)", README)
    assert len(links) >= 4
    assert [link for link in links if not (REPO_ROOT / link).is_file()] == []
    for page in (REPO_ROOT / "docs").glob("*.md"):
        back = re.findall(r"\]\((\.\./[^)#\s]+|[^):#\s]+\.md)", page.read_text(encoding="utf-8"))
        assert [link for link in back if not (page.parent / link).is_file()] == [], page.name
