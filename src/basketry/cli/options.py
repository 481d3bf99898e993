"""Options declared once. The options of every command that reads transaction data
(:class:`ReadOptions`) and of every command that mines (:class:`MiningOptions`) are option
groups: a dataclass whose fields are typer options, spread into a command's parameters by
:func:`option_groups`, so that a new option is one new field.

A command takes a group as one parameter (``mining: MiningOptions``); a default instance
(``mining: MiningOptions = MiningOptions(min_confidence=0.2)``) sets that command's defaults.
Nothing heavy is imported here: the values become the library's parameters only when a command
runs (:meth:`MiningOptions.miner_params`, :meth:`ReadOptions.reader_kwargs`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_type_hints

import typer

# ---- reading transaction data ----------------------------------------------------------------
Format = Annotated[str, typer.Option("--format", help="auto | basket | long-csv | long-parquet",
                                     envvar="BASKETRY_FORMAT")]
TransactionCol = Annotated[str | None, typer.Option(help="Transaction id column (long tables).")]
ItemCol = Annotated[str | None, typer.Option(help="Item column (long tables).")]
TimestampCol = Annotated[str | None, typer.Option(help="Timestamp column (optional).")]
CustomerCol = Annotated[str | None, typer.Option(help="Customer column (optional).")]
QuantityCol = Annotated[str | None, typer.Option(help="Quantity column; rows <= 0 are dropped.")]
LabelCol = Annotated[str | None, typer.Option(help="Item description column (optional).")]
Sep = Annotated[str | None, typer.Option(
    help="Item separator or CSV delimiter (\\t: tab).")]
TimestampFormat = Annotated[str | None, typer.Option(
    help="strftime format, e.g. '%d/%m/%Y %H:%M' (default: guessed).")]
Preset = Annotated[str | None, typer.Option(help="Column preset, e.g. online-retail.")]


class OptionGroup:
    """A dataclass of typer options that :func:`option_groups` spreads into a command."""


@dataclass(frozen=True)
class ReadOptions(OptionGroup):
    """How to read a transaction file (mine, train, tune, profile)."""

    fmt: Format = "auto"
    transaction_col: TransactionCol = None
    item_col: ItemCol = None
    timestamp_col: TimestampCol = None
    timestamp_format: TimestampFormat = None
    customer_col: CustomerCol = None
    quantity_col: QuantityCol = None
    label_col: LabelCol = None
    sep: Sep = None
    preset: Preset = None

    def reader_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`basketry.data.read_baskets` that were given."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["format"] = values.pop("fmt")
        return {k: v for k, v in values.items() if v is not None}


# ---- mining ----------------------------------------------------------------------------------
MinSupport = Annotated[str, typer.Option(
    help="Share (0.01) or count (25).",
    envvar="BASKETRY_MIN_SUPPORT")]
MinConfidence = Annotated[float, typer.Option(help="In [0, 1].", envvar="BASKETRY_MIN_CONFIDENCE")]
MinLift = Annotated[float | None, typer.Option(help="Keep rules with lift >= this.")]
MaxPValue = Annotated[float | None, typer.Option(
    help="Keep rules with Fisher p-value <= this.")]
MaxLen = Annotated[int | None, typer.Option(help="Longest itemset mined.")]
Algorithm = Annotated[str, typer.Option(help="fpgrowth | apriori")]
Consequents = Annotated[str | None, typer.Option(
    help="Only these consequents (a,b,c).")]
Antecedents = Annotated[str | None, typer.Option(
    help="Only these in antecedents (a,b,c).")]
Exclude = Annotated[str | None, typer.Option(help="Items to ignore (a,b,c).")]
MultiConsequent = Annotated[bool, typer.Option(
    "--multi-consequent", help="Also rules with several consequents.")]
MaxItemsets = Annotated[int | None, typer.Option(help="Stop past this many itemsets.")]
MaxRules = Annotated[int | None, typer.Option(help="Stop past this many rules.")]
MemoryBudget = Annotated[str | None, typer.Option(
    help="Memory for mining: 4G, 512M or off.",
    envvar="BASKETRY_MEMORY_BUDGET")]
Jobs = Annotated[int | None, typer.Option(
    "--jobs", "-j", help="Threads (default: one per core).",
    envvar="BASKETRY_JOBS")]


def split_items(value: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; nothing given -> None."""
    return None if not value else [v.strip() for v in value.split(",") if v.strip()]


@dataclass(frozen=True)
class MiningOptions(OptionGroup):
    """What to mine and within which limits (mine, train, tune, demo)."""

    min_support: MinSupport = "0.01"
    min_confidence: MinConfidence = 0.1
    min_lift: MinLift = None
    max_p_value: MaxPValue = None
    max_len: MaxLen = None
    algorithm: Algorithm = "fpgrowth"
    consequents: Consequents = None
    antecedents: Antecedents = None
    exclude: Exclude = None
    multi_consequent: MultiConsequent = False
    max_itemsets: MaxItemsets = None
    max_rules: MaxRules = None
    memory_budget: MemoryBudget = None
    jobs: Jobs = None

    def miner_params(self) -> dict[str, Any]:
        """The :class:`~basketry.mining.AssociationMiner` parameters: ``min_support`` read by
        the mining package's one parser (``MiningError``), item lists split; ``n_jobs`` only
        when given (how a fit runs, never what it finds, so not a recorded parameter)."""
        from basketry.mining._params import parse_min_support

        params: dict[str, Any] = dict(
            min_support=parse_min_support(str(self.min_support)),
            min_confidence=self.min_confidence, min_lift=self.min_lift,
            max_p_value=self.max_p_value, max_len=self.max_len, algorithm=self.algorithm,
            consequents=split_items(self.consequents), antecedents=split_items(self.antecedents),
            exclude=split_items(self.exclude), multi_consequent=self.multi_consequent,
            max_itemsets=self.max_itemsets, max_rules=self.max_rules,
            memory_budget=self.memory_budget)
        if self.jobs is not None:
            params["n_jobs"] = self.jobs
        return params


# ---- the engine that mines -------------------------------------------------------------------
Engine = Annotated[str, typer.Option(
    "--engine", help="local | spark: mine in this process, or with Spark's FPGrowth (the same "
    "model; pip install 'basketry[spark]').", envvar="BASKETRY_ENGINE")]
SparkMaster = Annotated[str | None, typer.Option(
    "--spark-master", help="Spark master of --engine spark, e.g. spark://host:7077 or yarn "
    "(default: local[*]).", envvar="SPARK_MASTER")]


@dataclass(frozen=True)
class EngineOptions(OptionGroup):
    """Which engine mines (mine, train, tune); checked before any work."""

    engine: Engine = "local"
    spark_master: SparkMaster = None

    @property
    def spark(self) -> bool:
        """True for the spark engine; an unknown engine is a ``MiningError``."""
        from basketry.mining.spark import check_engine

        return check_engine(self.engine) == "spark"

    def miners(self, say: Callable[[str], None]) -> Any:
        """A context manager giving the miner factory of the engine (a Spark session for the
        spark engine, stopped at its end)."""
        from basketry.mining.spark import miners

        return miners(self.engine, self.spark_master, say=say)


# ---- options of a few commands ---------------------------------------------------------------
#: The help panel of the MLflow tracking and registry options.
TRACKING = "Tracking and registry"
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing model dir.")]


def _registered_model_name(name: str) -> str:
    """Checked before any work, so that a bad name never fails after a model was written (a
    RegistryError: one line through the failure funnel)."""
    from basketry.training.registry import check_model_name

    check_model_name(name)
    return name


RegisteredModel = Annotated[str, typer.Option("--registered-model", "-m",
                                              help="Registered model name.",
                                              envvar="BASKETRY_REGISTERED_MODEL",
                                              rich_help_panel=TRACKING,
                                              callback=_registered_model_name)]


DataStore = Annotated[str | None, typer.Option(
    "--data-store", help="Data snapshots: folder or URL.",
    envvar="BASKETRY_DATA_STORE", rich_help_panel=TRACKING)]


# ---- spreading groups into commands ----------------------------------------------------------
Command = TypeVar("Command", bound=Callable[..., Any])


#: The help panel of each group's options (`basketry train --help` lists them apart).
PANELS: dict[str, str] = {"ReadOptions": "Reading data", "MiningOptions": "Mining",
                          "EngineOptions": "Engine"}


def _in_panel(annotation: Any, panel: str | None) -> Any:
    """``Annotated[T, typer.Option(...)]`` with the option shown in ``panel``."""
    info = annotation.__metadata__[0]
    if panel is None or getattr(info, "rich_help_panel", None):
        return annotation
    info = copy.copy(info)
    info.rich_help_panel = panel
    return Annotated[annotation.__origin__, info]


def group_parameters(group: type[OptionGroup], defaults: OptionGroup | None = None
                     ) -> list[inspect.Parameter]:
    """The command parameters a group stands for, in field order, with ``defaults``' values
    (else the group's own) as defaults, shown in the group's help panel."""
    hints = get_type_hints(group, include_extras=True)
    given = defaults if defaults is not None else group()
    panel = PANELS.get(group.__name__)
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                              default=getattr(given, f.name),
                              annotation=_in_panel(hints[f.name], panel))
            for f in dataclasses.fields(group)]


def option_groups(func: Command) -> Command:
    """Spread every :class:`OptionGroup` parameter of ``func`` into its options for typer, and
    gather them back into the group when the command runs."""
    signature = inspect.signature(func, eval_str=True)
    parameters: list[inspect.Parameter] = []
    groups: dict[str, tuple[type[OptionGroup], list[str]]] = {}
    for param in signature.parameters.values():
        kind = param.annotation
        if isinstance(kind, type) and issubclass(kind, OptionGroup):
            spread = group_parameters(kind, param.default if isinstance(param.default, kind)
                                      else None)
            groups[param.name] = (kind, [p.name for p in spread])
            parameters.extend(spread)
        else:
            parameters.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    names = [p.name for p in parameters]
    if len(set(names)) != len(names):
        raise TypeError(f"{func.__name__}: an option group repeats a parameter name")

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        for name, (group, fields) in groups.items():
            kwargs[name] = group(**{field: kwargs.pop(field) for field in fields})
        return func(**kwargs)

    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command  # type: ignore[return-value]
