"""The MLflow ``python_function`` flavour of a basketry model: a loader module, not a pickle.

A registered basketry model is an MLflow model directory whose ``MLmodel`` names this module as
``loader_module`` and whose ``data`` is the basketry artifact itself (manifest.json,
items.parquet, rules.parquet, checksums verified on load). ``mlflow.pyfunc.load_model`` (and so
``mlflow models serve``) calls :func:`_load_pyfunc` with that directory; nothing is unpickled.

Input of ``predict``: a pandas DataFrame with a ``basket`` column (a list of item strings per
row) and an optional ``k`` column (default 5), or a list of baskets. Output: a DataFrame with
``items`` (recommended item strings, best first) and ``scores``.

Imports only the model contract (and pandas).
"""

from __future__ import annotations

from typing import Any

from basketry.model import Model, load_model

DEFAULT_K = 5


class BasketryPyfunc:
    """What ``mlflow.pyfunc`` wraps: a loaded :class:`basketry.model.Model`."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        k_default = int((params or {}).get("k", DEFAULT_K))
        if isinstance(model_input, pd.DataFrame):
            baskets = list(model_input["basket"])
            ks = (list(model_input["k"]) if "k" in model_input.columns
                  else [k_default] * len(baskets))
        else:
            baskets = list(model_input)
            ks = [k_default] * len(baskets)
        items, scores = [], []
        for basket, k in zip(baskets, ks, strict=True):
            basket = [basket] if isinstance(basket, str) else [str(i) for i in basket]
            answer = self.model.recommend(basket, k=int(k))
            items.append([rec.item for rec in answer.items])
            scores.append([float(rec.score) for rec in answer.items])
        return pd.DataFrame({"items": items, "scores": scores})


def _load_pyfunc(data_path: str) -> BasketryPyfunc:
    """MLflow's loader-module entry point: ``data_path`` is the basketry artifact directory."""
    return BasketryPyfunc(load_model(data_path))
