"""The candidate grid as Dagster steps, for either use case: every family x fit hyperparameters is
its own step (dynamic outputs), so the UI shows each one's status and metrics, a failed one
retries alone, and an executor with more processes (or Kubernetes pods) runs them in parallel
without code changes. What a step does is the use case's ``fit_unit``.

A use case that can screen (``screening``) gets successive halving: on a large enough train
split, the units of a family with several first fit on a share of it (``__screen`` steps), and
``__promote`` sends on to the full fit only those within reach of their family's best, of
families that can earn a place beside the rung's references (ml/evaluation/halving.py). A run
with a time budget screens every unit, sends them on best value per second first, and a full fit
starts only if its rung's estimate ends before the grid's deadline (ml/evaluation/budget.py).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import dagster as dg
from pydantic import Field

from ml.evaluation.budget import GridBudget, schedule
from ml.evaluation.candidates import CandidateResult, CandidateSpec
from ml.evaluation.halving import Rung, RungDecision, RungEntry, RungReferences, decide
from ml.evaluation.report import table_rows
from orchestration.config import CandidateConfig, GridConfig
from orchestration.metadata import for_display, rows_table
from orchestration.resources import MlflowResource
from orchestration.settings import WORKER_NAME
from orchestration.storage import RunStorage

CELERY_DEFAULT_PRIORITY = 5  # dagster-celery's task_default_priority


@dataclass
class UnitOutcome:
    """What one grid step produced: a row per scoring variant, or why it could not fit."""

    unit: str
    family: str
    results: list[CandidateResult] = field(default_factory=list)
    skipped: str | None = None
    rung: RungEntry | None = None  # a screening step's figures against the reference


FitUnit = Callable[
    [dg.OpExecutionContext, CandidateSpec, object, RunStorage, MlflowResource], UnitOutcome
]
# A unit fitted at a rung: the same, on the rung's share of the train split.
ScreenUnit = Callable[
    [dg.OpExecutionContext, CandidateSpec, object, RunStorage, MlflowResource, Rung], UnitOutcome
]


@dataclass(frozen=True)
class RungHandle:
    """A run's rung, where its ``RungReferences`` are in the run store (None: the run does
    not screen, its train split being under the rung's ``min_train_rows``), and its budget."""

    rung: Rung
    key: str | None = None
    budget: GridBudget | None = None

    def references(self, storage: RunStorage) -> RungReferences:
        return RungReferences.load(storage.stage(self.key))


@dataclass(frozen=True)
class GridPlan:
    """The grid's units, the rung some of them go through first (None: no screening), in a
    budgeted run the grid's deadline (``time.time()`` seconds), which screens and fits share,
    and the outcomes of the units refused at this size (no step of their own)."""

    specs: list[CandidateSpec]
    rung: RungHandle | None = None
    deadline: float | None = None
    refused: list[UnitOutcome] = field(default_factory=list)


@dataclass(frozen=True)
class RungVerdicts:
    """What ``promote`` decided: each screened unit's decision, an outcome for each one that
    goes no further (stopped, with the figures why, unable to fit even at the rung, or refused
    at this size by the plan), the full fits in the order they are sent on with their estimated
    seconds, and, in a budgeted run, the grid's deadline and each unit's outcome at the rung
    (what stands in for a full fit that does not start)."""

    decisions: list[RungDecision]
    stopped: list[UnitOutcome]
    estimates: dict[str, float] = field(default_factory=dict)
    budget: GridBudget | None = None
    deadline: float | None = None
    at_rung: dict[str, UnitOutcome] = field(default_factory=dict)

    def within_budget(self, spec: CandidateSpec, now: float) -> UnitOutcome | None:
        """The unit's outcome at the rung if its full fit must not start at ``now``."""
        if self.budget is None or spec.unit_name not in self.estimates:
            return None
        why = self.budget.refusal(self.estimates[spec.unit_name], self.deadline, now)
        if why is None:
            return None
        return replace(self.at_rung[spec.unit_name], skipped=why)


def size_refused(specs: list[CandidateSpec], train_rows: int) -> list[UnitOutcome]:
    """An outcome for each unit that does not run on ``train_rows`` rows, saying why."""
    return [
        UnitOutcome(spec.unit_name, spec.family, skipped=why)
        for spec in specs
        if (why := spec.size_refusal(train_rows)) is not None
    ]


def run_started(context: dg.OpExecutionContext) -> float:
    """When the run started (``time.time()`` seconds): a budget counts from there."""
    return context.instance.get_run_record_by_id(context.run_id).start_time or time.time()


def rung_verdicts(plan: GridPlan, screened: list[UnitOutcome], storage: RunStorage) -> RungVerdicts:
    if plan.rung is None:
        return RungVerdicts([], plan.refused)
    entries = {o.unit: o.rung for o in screened if o.rung}
    rung, budget = plan.rung.rung, plan.rung.budget
    decisions = decide(entries, plan.rung.references(storage), rung, storage)
    stopped = [
        UnitOutcome(d.unit, d.family, skipped=f"successive halving: {d.reason}")
        for d in decisions
        if not d.promoted
    ]
    return RungVerdicts(
        decisions,
        stopped + [o for o in screened if o.skipped] + plan.refused,
        # Only a budgeted run reorders its fits; otherwise the grid's order and priority stand.
        {s.unit: s.estimate for s in schedule(decisions, entries, rung.share)} if budget else {},
        budget,
        plan.deadline,
        {o.unit: o for o in screened if o.rung} if budget else {},
    )


def candidate_grid(
    name: str,
    default: list[dict],
    description: str,
    dataset: dg.AssetsDefinition,
    handle_type: type,
    fit_unit: FitUnit,
    k: int,
    priority: int = 0,
    screening: tuple[ScreenUnit, dg.AssetsDefinition] | None = None,
) -> dg.AssetsDefinition:
    """A graph asset over ``dataset``: plan the grid from run config, fit every unit as its own
    step, collect the outcomes. With ``screening`` (a ``screen_unit`` and the asset handing over
    the run's ``RungHandle``), units are screened at the rung first when the run screens. Steps
    of a grid with a higher ``priority`` start first when several are ready:
    ``dagster/priority`` for the multiprocess executor, and ``dagster-celery/priority`` (added
    to Celery's default, 5) for the Celery executor, which submits ready steps in that order."""
    tags = {
        "dagster/priority": str(priority),
        "dagster-celery/priority": str(CELERY_DEFAULT_PRIORITY + priority),
    }

    class Grid(GridConfig):
        candidates: list[CandidateConfig] = Field(
            default=default, description="Grid units: family, params, scoring variants."
        )

    def planned_specs(config: Grid) -> list[CandidateSpec]:
        # Entries arrive as plain dicts through the graph's config mapping.
        specs = [CandidateConfig.model_validate(dict(c)).spec() for c in config.candidates]
        names = [spec.unit_name for spec in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise dg.Failure(f"{name}: the grid repeats {duplicates}", allow_retries=False)
        for spec in specs:
            spec.validate()
        return specs

    @dg.op(
        name=f"{name}__plan",
        ins={"dataset": dg.In(handle_type), "rung": dg.In(default_value=None)},
        out={
            "units": dg.DynamicOut(CandidateSpec),
            "plan": dg.Out(GridPlan, is_required=False),
            "refused": dg.Out(list[UnitOutcome], is_required=False),
        },
        tags=tags,
    )
    def plan(context: dg.OpExecutionContext, config: Grid, dataset, rung: RungHandle | None):
        """``units``: what the next steps take: in a grid that cannot screen, every unit that
        can run at this size (``refused``: the others); in one that can, those screened first
        (none when the run does not screen), ``promote`` sending the others on."""
        specs, train_rows = planned_specs(config), dataset.grid_train_rows
        screened = []
        if rung and rung.key:
            screened = rung.rung.screened(specs, train_rows, rung.budget is not None)
        refused = size_refused(specs, train_rows)
        for outcome in refused:
            context.log.warning(f"skipped {outcome.unit}: {outcome.skipped}")
        held = {o.unit for o in refused}  # no step of their own; ``promote`` holds them too
        for spec in screened if screening else [s for s in specs if s.unit_name not in held]:
            yield dg.DynamicOutput(spec, output_name="units", mapping_key=spec.unit_name)
        if screening:  # a grid that cannot screen has no step that takes the plan
            budget = rung.budget if screened else None
            deadline = budget.deadline(run_started(context)) if budget else None
            rung = rung if screened else None
            yield dg.Output(GridPlan(specs, rung, deadline, refused), output_name="plan")
        else:
            yield dg.Output(refused, output_name="refused")
        said = f", {len(screened)} first at the rung" if screened else ""
        said += f", {len(refused)} refused at this size" if refused else ""
        context.log.info(f"{name}: {len(specs)} units{said}")

    @dg.op(
        name=f"{name}__screen",
        ins={"dataset": dg.In(handle_type), "spec": dg.In(CandidateSpec), "plan": dg.In(GridPlan)},
        retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
        tags=tags,
    )
    def screen(
        context: dg.OpExecutionContext,
        dataset,
        spec,
        plan: GridPlan,
        storage: RunStorage,
        mlflow: MlflowResource,
    ) -> UnitOutcome:
        """The unit at the rung; in a budgeted run, not once the grid's deadline has passed."""
        if plan.deadline is not None and time.time() > plan.deadline:
            why = "time budget: the grid's deadline passed before its rung could start"
            context.log.info(f"{spec.unit_name} not screened: {why}")
            return UnitOutcome(spec.unit_name, spec.family, skipped=why)
        screen_unit, _ = screening
        return screen_unit(context, spec, dataset, storage, mlflow, plan.rung.rung)

    @dg.op(
        name=f"{name}__promote",
        out={"units": dg.DynamicOut(CandidateSpec), "verdicts": dg.Out(RungVerdicts)},
        tags=tags,
    )
    def promote(
        context: dg.OpExecutionContext,
        plan: GridPlan,
        screened: list[UnitOutcome],
        storage: RunStorage,
    ):
        verdicts = rung_verdicts(plan, screened, storage)
        for decision in verdicts.decisions:
            context.log.info(f"{decision.unit}: {decision.reason}")
        held = {o.unit for o in verdicts.stopped}
        # Best value per second first: the executor starts ready steps in the order they come.
        order = {unit: i for i, unit in enumerate(verdicts.estimates)}
        for spec in sorted(plan.specs, key=lambda s: order.get(s.unit_name, len(order))):
            if spec.unit_name not in held:
                yield dg.DynamicOutput(spec, output_name="units", mapping_key=spec.unit_name)
        yield dg.Output(verdicts, output_name="verdicts")

    @dg.op(
        name=f"{name}__fit",
        ins={
            "dataset": dg.In(handle_type),
            "spec": dg.In(CandidateSpec),
            "verdicts": dg.In(default_value=None),
        },
        retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
        tags=tags,
    )
    def fit(
        context: dg.OpExecutionContext,
        dataset,
        spec,
        verdicts: RungVerdicts | None,
        storage: RunStorage,
        mlflow: MlflowResource,
    ) -> UnitOutcome:
        """The unit's full fit; in a budgeted run, only if its rung's estimate ends in time."""
        kept = verdicts.within_budget(spec, time.time()) if verdicts else None
        if kept:
            context.log.info(f"{spec.unit_name} not started: {kept.skipped}")
            return kept
        return fit_unit(context, spec, dataset, storage, mlflow)

    def collected_metadata(outcomes: list[UnitOutcome]) -> dict:
        results = [r for o in outcomes for r in o.results]
        return {
            "validation": rows_table(table_rows(results, k, None)),
            "skipped": dg.MetadataValue.json({o.unit: o.skipped for o in outcomes if o.skipped}),
            "worker": WORKER_NAME,
        }

    @dg.op(name=f"{name}__collect")
    def collect(
        context: dg.OpExecutionContext, fitted: list[UnitOutcome], refused: list[UnitOutcome]
    ) -> list[UnitOutcome]:
        outcomes = fitted + refused
        context.add_output_metadata(collected_metadata(outcomes))
        return outcomes

    @dg.op(name=f"{name}__collect")
    def collect_screened(
        context: dg.OpExecutionContext,
        plan: GridPlan,
        verdicts: RungVerdicts,
        fitted: list[UnitOutcome],
    ) -> list[UnitOutcome]:
        outcomes = fitted + verdicts.stopped
        metric = plan.rung.rung.metric if plan.rung else ""
        not_started = {o.unit: o.skipped for o in fitted if o.skipped and o.rung}
        rows = [
            {
                "unit": d.unit,
                "family": d.family,
                "candidate at the rung": d.candidate,
                metric: d.value,
                "family best": d.best_value,
                "margin": d.margin,
                "full fit estimate (s)": verdicts.estimates.get(d.unit),
                "decision": (
                    "stopped"
                    if not d.promoted
                    else "kept at the rung"
                    if d.unit in not_started
                    else "full fit"
                ),
                "why": not_started.get(d.unit, d.reason),
            }
            for d in verdicts.decisions
        ]
        halving = {"halving": rows_table(rows)} if rows else {}
        if plan.rung:
            halving |= {
                "rung_share_of_train": plan.rung.rung.share,
                "rung_margin_se": plan.rung.rung.margin_se,
            }
        if verdicts.deadline:
            halving |= {"grid_deadline": dg.MetadataValue.timestamp(verdicts.deadline)}
        context.add_output_metadata(for_display({**collected_metadata(outcomes), **halving}))
        return outcomes

    def route(config: dict) -> dict:
        return {f"{name}__plan": {"config": config}}

    ins = {"dataset": dg.AssetIn(dataset.key)}
    if screening is None:

        @dg.graph_asset(
            name=name,
            description=description,
            ins=ins,
            config=dg.ConfigMapping(config_fn=route, config_schema=Grid.to_config_schema()),
        )
        def grid_asset(dataset) -> list[UnitOutcome]:
            units, _, refused = plan(dataset)
            return collect(units.map(lambda spec: fit(dataset, spec)).collect(), refused)

        return grid_asset

    @dg.graph_asset(
        name=name,
        description=description,
        ins={**ins, "rung": dg.AssetIn(screening[1].key)},
        config=dg.ConfigMapping(config_fn=route, config_schema=Grid.to_config_schema()),
    )
    def screened_grid_asset(dataset, rung) -> list[UnitOutcome]:
        units, grid_plan, _ = plan(dataset, rung)
        screened = units.map(lambda spec: screen(dataset, spec, grid_plan)).collect()
        promoted, verdicts = promote(grid_plan, screened)
        fitted = promoted.map(lambda spec: fit(dataset, spec, verdicts)).collect()
        return collect_screened(grid_plan, verdicts, fitted)

    return screened_grid_asset
