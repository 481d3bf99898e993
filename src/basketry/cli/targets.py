"""Outputs refused before any work: the CLI's promise that a bad ``--out`` costs nothing."""

from __future__ import annotations

from pathlib import Path


def check_target(out: Path, *, overwrite: bool, inputs: tuple[Path, ...] = (),
                 kind: str = "model directory") -> None:
    """Refuse, before any work, an output that cannot or must not be written: a file where a
    directory goes (or the reverse), a path under a file, an existing target without
    ``--overwrite``, one that ``--overwrite`` may not replace (not a basketry model directory),
    or a target that is or holds an input."""
    from basketry.model import ModelError, check_model_target

    target = out.expanduser().absolute()
    for source in inputs:
        source = source.expanduser().absolute()
        if source == target:
            raise ModelError(f"--out {out} is the input; write the {kind} elsewhere")
        if target in source.parents:
            raise ModelError(f"--out {out} holds the input {source}; write the {kind} elsewhere")
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ModelError(f"--out {out}: {ancestor} is a file, not a directory")
    if not target.exists() and not target.is_symlink():
        return
    if kind == "model directory":
        if not target.is_dir():
            raise ModelError(f"--out {out} is a file, not a {kind}")
        if any(target.iterdir()) and not overwrite:
            raise ModelError(f"{out} already exists; pass --overwrite to replace it")
        check_model_target(target, overwrite=overwrite)  # the contract's rule for --overwrite
    elif target.is_dir():
        raise ModelError(f"--out {out} is a directory; give a file path")
    elif not overwrite:
        raise ModelError(f"{out} already exists; pass --overwrite to replace it")
