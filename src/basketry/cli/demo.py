"""`basketry demo`: the main job on the bundled sample, composed of the train workflow, the
registry and the model contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from basketry.cli.console import console, err_console, feedback
from basketry.cli.mining import print_recommendations, rules
from basketry.cli.options import MiningOptions, RegisteredModel, option_groups
from basketry.cli.train import Printer, check_train_targets, print_outcome

#: The demo's split: the sample's last 30 days are the test part.
TEST_DAYS = 30.0


@option_groups
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where to write the demo model.",
                                      envvar="BASKETRY_DEMO_MODEL")] = Path("models/demo"),
    mining: MiningOptions = MiningOptions(min_confidence=0.2),
    track: Annotated[bool | None, typer.Option(
        "--track/--no-track", help="Track, register and gate in MLflow (default: when MLflow "
        "is installed). Env: BASKETRY_TRACK.", envvar="BASKETRY_TRACK")] = None,
    registered_model: RegisteredModel = "basketry",
    serve_ref: Annotated[Path | None, typer.Option(
        "--serve-ref", help="Write the model reference to serve into this file "
        "(`make demo` serves what it names).")] = None,
    host: Annotated[str, typer.Option(help="Where `make demo` will serve it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Where `make demo` will serve it.")] = 8000,
) -> None:
    """The main job on the bundled sample, from training to serving.

    Train with an offline evaluation, register the model, apply the promotion gate, show
    rules and recommendations of the champion, and say how to serve it.

    Example:
      basketry demo
    """
    from basketry.data import sample_path
    from basketry.model import load_model
    from basketry.training.tracking import mlflow_available
    from basketry.training.workflow import report_prefix, train_workflow

    data = sample_path()
    params = mining.miner_params()
    if track is None:
        track = mlflow_available()
    console.rule("basketry demo: UCI Online Retail sample (CC BY 4.0)")
    check_train_targets(data, out, report_prefix(out), overwrite=True)
    with feedback() as live:
        outcome = train_workflow(data, out, mining=params, test_days=TEST_DAYS, overwrite=True,
                                 track=track, register=track,
                                 registered_model=registered_model, events=Printer(live))
    print_outcome(outcome)
    ref, model_dir = (_registry_ref(registered_model) if track else (str(out), out))
    if not track:
        console.print("MLflow is not installed (pip install 'basketry[mlflow]'): nothing was "
                      f"registered; serving the model directory {out}", highlight=False)
    console.rule(f"the model to serve: {ref}")
    rules(model_dir, sort="lift", top=10, item=None, output="table")
    model = load_model(model_dir)
    popular = [model.items[i] for i in model.popular[:3].tolist()]
    for basket in ([popular[0]], popular[1:3], ["NO-SUCH-ITEM"]):
        print_recommendations(model.recommend(basket, k=5), basket)
    if serve_ref is not None:
        serve_ref.parent.mkdir(parents=True, exist_ok=True)
        serve_ref.write_text(ref + "\n")
    base = f"http://{host}:{port}"
    console.rule(f"serve it: basketry serve --model {ref}  (make demo does it next)")
    console.print(
        "Then, from another terminal:\n"
        f"  curl -s {base}/v1/recommendations -H 'content-type: application/json' "
        f"-d '{{\"basket\": {json.dumps(popular[1:3])}, \"k\": 5}}'\n"
        f"  curl -s '{base}/v1/items/{popular[0]}/associations?k=5'\n"
        f"  curl -s {base}/v1/model\n"
        f"  curl -s {base}/metrics\n"
        f"  open {base}/docs for the interactive API documentation\n"
        f"  basketry models list    (the registry: versions, champion, challenger)",
        highlight=False, soft_wrap=True,
    )


def _registry_ref(name: str) -> tuple[str, Path]:
    """What the demo serves after a registration: the champion (which the new version became,
    or not: the gate's reasons were printed); with no champion at all (the first version did
    not pass the gate), the new version as challenger, said loudly. The reference and the
    version's local basketry artifact."""
    from basketry.training.registry import (
        CHALLENGER,
        CHAMPION,
        RegistryError,
        alias_version,
        version_model_dir,
    )
    from basketry.training.tracking import client

    champion = alias_version(CHAMPION, name=name)
    new = alias_version(CHALLENGER, name=name)
    alias = CHAMPION if champion is not None else CHALLENGER
    version = champion if champion is not None else new
    if version is None:  # a registration sets challenger: someone removed it since
        raise RegistryError(f"{name!r} has neither a champion nor a challenger to serve")
    model_dir = version_model_dir(client(), name, version)
    if champion == new:
        console.print(f"version {new} is the champion: serving models:/{name}@champion",
                      highlight=False)
    elif champion is not None:
        console.print(f"version {new} stays challenger (the gate's reasons are above); the "
                      f"champion is still version {champion}: serving models:/{name}@champion",
                      highlight=False)
    else:
        err_console.print(
            f"[bold yellow]note:[/] no version of {name!r} has passed the promotion gate, so "
            f"there is no champion; serving version {new} as challenger "
            f"(models:/{name}@challenger) for the demo only. It does not beat the popularity "
            "baseline: try a lower --min-support.", highlight=False)
    return f"models:/{name}@{alias}", model_dir
