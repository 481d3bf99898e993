"""A basketry project on disk (`basketry init`): ``params.yaml`` (the parameters of
``basketry train``, commented) and, for DVC, a ``dvc.yaml`` pipeline whose stages call
basketry, so that ``dvc repro`` and ``dvc exp run`` train and ``dvc.lock`` pins the data and the
model.

The pipeline, built from data in :func:`pipeline`:

- ``prepare``: ``basketry profile`` reads and validates the data (one line naming the problem
  when it cannot) and writes its profile and fingerprint, ``prepared/profile.json``;
- ``train``: ``basketry train --no-track`` with every key of the ``train`` section as
  ``--KEY VALUE`` (DVC's dict unpacking): split, tune the scoring, mine the training part, save
  ``model/`` and its report ``reports/train.json``/``.html``;
- ``evaluate``: ``basketry evaluate`` splits the data again as the model's manifest records,
  checks it is the data the model was trained on, and measures the model on the test part
  against the baselines: ``reports/metrics.json``, the DVC metrics (``dvc metrics show``,
  ``dvc exp show``);
- ``register``: ``basketry models register`` records an MLflow run (parameters, metrics, a
  snapshot of the data, the model) and registers the model through the promotion gate, the
  champion measured on the same test part, with the ``register`` section's options;
  ``reports/registration.json`` says which version and whether it was promoted.

The parameters and their defaults are given by the caller (the command reads them from
``basketry train`` itself), so the file cannot drift from the command."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

#: Files the pipeline writes, relative to the project.
PROFILE = "prepared/profile.json"
MODEL = "model"
REPORT = "reports/train"
METRICS = "reports/metrics.json"
REGISTRATION = "reports/registration.json"
#: Where the bundled sample is copied when no data is given.
DATA_DIR = "data"

#: The ``basketry train`` options ``params.yaml`` lists in its ``train`` section, in order;
#: those without a default are written commented out (uncomment to use).
TRAIN_KEYS = ("min-support", "min-confidence", "min-lift", "max-p-value", "max-len",
              "algorithm", "scoring", "test-days", "test-fraction", "seed")
#: The options of the registration (``basketry models register``, as named in ``train``), its
#: ``register`` section.
REGISTER_KEYS = ("registered-model", "tolerance")
#: The read options, its ``read`` section (given to both stages).
READ_KEYS = ("format", "preset", "transaction-col", "item-col", "timestamp-col",
             "timestamp-format", "customer-col", "quantity-col", "label-col", "sep")


class ProjectError(ValueError):
    """A project that cannot be written as asked (files in the way, a missing data file)."""


@dataclass(frozen=True)
class Param:
    """One option of ``basketry train``: its key (the long option without ``--``), default
    (``None``: none) and help."""

    key: str
    default: Any
    help: str = ""


@dataclass(frozen=True)
class ProjectFile:
    """One file of the project: ``text`` written, or ``source`` copied (the data)."""

    path: str
    text: str | None = None
    source: Path | None = None


def _scalar(value: Any) -> str:
    """One YAML scalar, quoted by the YAML library where it must be."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _value(default: Any) -> Any:
    """A default as params.yaml holds it: a number given as text (``--min-support``'s "0.01")
    becomes the number, so that ``dvc exp run --set-param`` and the rendered command agree."""
    if isinstance(default, str):
        parsed = yaml.safe_load(default)
        if isinstance(parsed, int | float) and not isinstance(parsed, bool):
            return parsed
    return default


def _section(name: str, params: Sequence[Param], keys: Sequence[str],
             overrides: Mapping[str, Any]) -> list[str]:
    by_key = {p.key: p for p in params}
    missing = [k for k in keys if k not in by_key]
    if missing:  # basketry train renamed or dropped an option this file lists
        raise ProjectError(f"basketry train has no option --{', --'.join(missing)}")
    lines = [f"{name}:"]
    for key in keys:
        param = by_key[key]
        value = overrides.get(key, _value(param.default))
        comment = " ".join(param.help.split())
        entry = f"{key}: {_scalar(value)}" if value is not None else f"# {key}: "
        lines.append(f"  {entry}" + (f"  # {comment}" if comment else ""))
    return lines


def params_yaml(data: str, params: Sequence[Param], *, name: str | None = None) -> str:
    """``params.yaml``: the data, how to read it, and ``basketry train``'s parameters with
    their current defaults, each commented with its help."""
    overrides = {"registered-model": name} if name else {}
    lines = [
        "# Parameters of the basketry pipeline (dvc.yaml). Every key of `read` and `train` is",
        "# passed to basketry as --KEY VALUE: uncomment a key to use it; see",
        "# `basketry train --help`. Change one and `dvc repro` retrains, or try one with",
        "# `dvc exp run --set-param train.min-support=0.02`.",
        "",
        f"data: {_scalar(data)}  # the transaction file (basket lines, CSV or Parquet)",
        "",
        *_section("read", params, READ_KEYS, {}),
        "",
        *_section("train", params, TRAIN_KEYS, {}),
        "",
        *_section("register", params, REGISTER_KEYS, overrides),
    ]
    return "\n".join(lines) + "\n"


def pipeline() -> dict[str, Any]:
    """The ``dvc.yaml`` pipeline: the stages, what each reads and writes."""
    return {"stages": {
        "prepare": {
            # DVC makes no directory for an output a shell redirection writes
            "cmd": f"mkdir -p {PurePosixPath(PROFILE).parent} && "
                   f"basketry profile ${{data}} ${{read}} > {PROFILE}",
            "deps": ["${data}"],
            "params": ["read"],
            "outs": [PROFILE],
        },
        "train": {
            "cmd": f"basketry train ${{data}} ${{read}} --out {MODEL} --report {REPORT} "
                   "--no-track ${train}",
            "deps": ["${data}", PROFILE],
            "params": ["read", "train"],
            # the report in git, not the cache: small, and read beside the metrics
            "outs": [MODEL, {f"{REPORT}.html": {"cache": False}},
                     {f"{REPORT}.json": {"cache": False}}],
        },
        "evaluate": {
            "cmd": f"basketry evaluate {MODEL} ${{data}} ${{read}} --metrics {METRICS}",
            "deps": ["${data}", MODEL],
            "params": ["read"],
            # in git, not the cache: `dvc metrics show` and `dvc exp show` read it
            "metrics": [{METRICS: {"cache": False}}],
        },
        "register": {
            "cmd": f"basketry models register {MODEL} ${{data}} ${{read}} "
                   f"--record {REGISTRATION} ${{register}}",
            "deps": ["${data}", MODEL, METRICS],
            "params": ["read", "register"],
            "outs": [{REGISTRATION: {"cache": False}}],
        },
    }}


def _unpacked(params: Mapping[str, Any], section: str) -> list[str]:
    """A section as DVC's ``${section}`` renders a dict: ``--key value`` pairs."""
    return [word for key, value in (params.get(section) or {}).items()
            for word in (f"--{key}", str(value))]


def stage_commands(params_text: str) -> dict[str, str]:
    """Each stage's command as DVC runs it with this ``params.yaml`` (what ``dvc.lock``
    records)."""
    import shlex

    params = yaml.safe_load(params_text)
    data, read = str(params["data"]), _unpacked(params, "read")
    return {
        "prepare": f"mkdir -p {PurePosixPath(PROFILE).parent} && "
                   f"{shlex.join(['basketry', 'profile', data, *read])} > {PROFILE}",
        "train": shlex.join(["basketry", "train", data, *read, "--out", MODEL, "--report",
                             REPORT, "--no-track", *_unpacked(params, "train")]),
        "evaluate": shlex.join(["basketry", "evaluate", MODEL, data, *read, "--metrics",
                                METRICS]),
        "register": shlex.join(["basketry", "models", "register", MODEL, data, *read,
                                "--record", REGISTRATION, *_unpacked(params, "register")]),
    }


def train_command(params_text: str) -> str:
    """The one ``basketry train`` command a ``params.yaml`` stands for in a project without
    DVC: train, evaluate, track and register in one run."""
    import shlex

    params = yaml.safe_load(params_text)
    return shlex.join(["basketry", "train", str(params["data"]), *_unpacked(params, "read"),
                       "--out", MODEL, "--report", REPORT, *_unpacked(params, "train"),
                       *_unpacked(params, "register")])


def dvc_yaml() -> str:
    header = ("# The basketry pipeline: `dvc repro` runs what changed (data, params.yaml);\n"
              "# dvc.lock pins the data and the model. Parameters: params.yaml.\n")
    return header + yaml.safe_dump(pipeline(), sort_keys=False, width=100)


def plan(directory: Path, params: Sequence[Param], *, dvc: bool, data: Path | None,
         sample: Path, name: str | None = None) -> list[ProjectFile]:
    """The files of a project in ``directory``. Without ``data``, the bundled ``sample`` is
    copied into ``data/``; a data file inside the project is named relative to it, one
    outside by its absolute path (DVC then pins it as an external dependency)."""
    directory = directory.absolute()
    files: list[ProjectFile] = []
    if data is None:
        where = f"{DATA_DIR}/{sample.name}"
        files.append(ProjectFile(where, source=sample))
        # the sample's licence (CC BY 4.0) asks for its attribution to travel with it
        readme = sample.with_name("README.md")
        if readme.is_file():
            files.append(ProjectFile(f"{DATA_DIR}/README.md", source=readme))
    else:
        if not data.is_file():
            raise ProjectError(f"--data {data}: no such file")
        data = data.absolute()
        where = (data.relative_to(directory).as_posix() if data.is_relative_to(directory)
                 else str(data))
    files.append(ProjectFile("params.yaml", text=params_yaml(where, params, name=name)))
    if dvc:
        files.append(ProjectFile("dvc.yaml", text=dvc_yaml()))
    return files


def in_the_way(directory: Path, files: Iterable[ProjectFile]) -> list[str]:
    """The project's files that already exist (or cannot be written: a directory there)."""
    return [f.path for f in files if (directory / f.path).exists()
            or (directory / f.path).is_symlink()]


def write(directory: Path, files: Sequence[ProjectFile], *, force: bool = False) -> list[Path]:
    """Write the project; refuse, before writing anything, files that exist unless ``force``."""
    if directory.exists() and not directory.is_dir():
        raise ProjectError(f"{directory} is a file, not a directory")
    existing = in_the_way(directory, files)
    if existing and not force:
        raise ProjectError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}"
                           f" in {directory}; pass --force to overwrite")
    directories = [f.path for f in files if (directory / f.path).is_dir()]
    if directories:
        raise ProjectError(f"{', '.join(directories)} in {directory} is a directory")
    written = []
    for f in files:
        target = directory / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.source is not None:
            shutil.copyfile(f.source, target)
        else:
            target.write_text(f.text or "", encoding="utf-8")
        written.append(target)
    return written
