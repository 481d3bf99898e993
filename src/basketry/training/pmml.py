"""PMML 4.4 export and import of a model artifact (an ``AssociationModel``).

``export_pmml(model_dir, out_path)`` writes a PMML 4.4 document any PMML consumer can read: the
items, the itemsets the rules use, and the rules with support, confidence, lift, leverage and
affinity (the Jaccard coefficient). What PMML has no place for (the exact counts, the other
measures, the item counts, the manifest: parameters, scoring, dataset profile and fingerprint,
metrics) goes into ``<Extension extender="basketry" name="basketry">`` elements, which the
standard allows anywhere and other consumers skip. ``import_pmml(pmml_path, out_dir)`` reads
such a document back into a model directory whose tables equal the original's (values and
types; floats are written as the shortest decimal that parses back to the same double), so
the imported model recommends exactly what the original does.

See docs/model-format.md ("PMML") for the mapping.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from basketry import __version__
from basketry.model import (
    ModelError,
    check_model_target,
    items_table,
    read_artifact,
    validate_content,
    write_model,
)
from basketry.model.format import COUNT_COLUMNS, MEASURE_COLUMNS, RULES_SCHEMA

PMML_VERSION = "4.4"
PMML_NS = "http://www.dmg.org/PMML-4_4"
#: Namespace of the elements basketry puts inside its ``Extension`` elements.
BASKETRY_NS = "urn:basketry:pmml:1"
EXTENDER = "basketry"
TRANSACTION_FIELD = "transaction"
ITEM_FIELD = "item"

#: Rule columns carried by standard ``AssociationRule`` attributes (``affinity`` is Jaccard).
STANDARD_RULE_ATTRIBUTES = {
    "support": "support",
    "confidence": "confidence",
    "lift": "lift",
    "leverage": "leverage",
    "jaccard": "affinity",
}
#: Rule columns carried by the rule's basketry extension, in this order.
EXTENSION_RULE_COLUMNS = tuple(COUNT_COLUMNS) + tuple(
    c for c in MEASURE_COLUMNS if c not in STANDARD_RULE_ATTRIBUTES
)
#: Manifest fields that are re-derived when the model is written again.
_DERIVED_MANIFEST_FIELDS = (
    "format", "format_version", "model_version", "basketry_version", "created_at", "counts",
    "files", "version_of",
)

_P = f"{{{PMML_NS}}}"
_B = f"{{{BASKETRY_NS}}}"


class PMMLError(ModelError):
    """A PMML document cannot be exported or imported (names the file and the problem)."""


# -- writing ---------------------------------------------------------------------------------


def _float(value: float) -> str:
    """A double as the shortest decimal that parses back to the same bits (xs:double spelling
    of the special values)."""
    value = float(value)
    if math.isfinite(value):
        return repr(value)
    if math.isnan(value):
        return "NaN"
    return "INF" if value > 0 else "-INF"


def _xml_text(value: str, what: str) -> str:
    """``value`` if XML 1.0 can carry it, else a clear error (control characters cannot)."""
    for ch in value:
        code = ord(ch)
        if (code < 0x20 and ch not in "\t\n\r") or 0xD800 <= code <= 0xDFFF or code in (
            0xFFFE, 0xFFFF,
        ):
            raise PMMLError(f"{what} {value!r} contains the character U+{code:04X}, which XML "
                            "1.0 (and so PMML) cannot carry")
    return value


def _extension(parent: ET.Element, tag: str, attrib: dict[str, str] | None = None) -> ET.Element:
    ext = ET.SubElement(parent, _P + "Extension", {"extender": EXTENDER, "name": "basketry"})
    return ET.SubElement(ext, _B + tag, attrib or {})


def _threshold(parameters: dict[str, Any], n_baskets: int, rules: pa.Table) -> tuple[float, float]:
    """minimumSupport (a fraction: the exact minimum count over N when known) and
    minimumConfidence for the AssociationModel element."""
    support: float | None = None
    min_count = parameters.get("min_count")
    min_support = parameters.get("min_support")
    if isinstance(min_count, int) and n_baskets > 0:
        support = min_count / n_baskets
    elif isinstance(min_support, float) and 0 <= min_support <= 1:
        support = min_support
    elif isinstance(min_support, int) and n_baskets > 0:
        support = min_support / n_baskets
    if support is None:
        support = float(min(rules.column("support").to_pylist(), default=0.0))
    confidence = parameters.get("min_confidence")
    if not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        confidence = float(min(rules.column("confidence").to_pylist(), default=0.0))
    return min(max(float(support), 0.0), 1.0), float(confidence)


def _output(model: ET.Element, k: int) -> None:
    """Output fields a PMML scorer fills: the ``k`` best exclusive recommendations (rules whose
    antecedent is in the basket and whose consequent is not) by confidence, each with its
    consequent, rule id and confidence."""
    output = ET.SubElement(model, _P + "Output")
    features = (("consequent", "categorical", "string"), ("ruleId", "categorical", "string"),
                ("confidence", "continuous", "double"))
    for rank in range(1, k + 1):
        for feature, optype, data_type in features:
            ET.SubElement(output, _P + "OutputField", {
                "name": f"{feature}_{rank}", "optype": optype, "dataType": data_type,
                "feature": "ruleValue", "ruleFeature": feature,
                "algorithm": "exclusiveRecommendation", "rankBasis": "confidence",
                "rankOrder": "descending", "rank": str(rank),
            })


def pmml_document(model_dir: str | os.PathLike[str], *, k: int = 5) -> ET.ElementTree:
    """The PMML 4.4 document of the model at ``model_dir`` (read with checksum verification),
    declaring ``k`` ranked recommendations as output fields."""
    if k < 1:
        raise PMMLError(f"k={k}: the PMML document must declare at least one recommendation")
    artifact = read_artifact(model_dir)
    manifest = artifact.manifest
    n_baskets = int(manifest["counts"]["n_baskets"])
    parameters = manifest.get("parameters") or {}
    items = artifact.items.column("item").to_pylist()
    labels = artifact.items.column("label").to_pylist()
    item_counts = artifact.items.column("count").to_pylist()
    rules = artifact.rules
    antecedents = rules.column("antecedent").to_pylist()
    consequents = rules.column("consequent").to_pylist()

    ET.register_namespace("", PMML_NS)
    ET.register_namespace("basketry", BASKETRY_NS)
    root = ET.Element(_P + "PMML", {"version": PMML_VERSION})
    header = ET.SubElement(root, _P + "Header", {
        "description": f"basketry association rules, model {artifact.version}",
        "modelVersion": artifact.version,
    })
    ET.SubElement(header, _P + "Application", {"name": "basketry", "version": __version__})
    timestamp = ET.SubElement(header, _P + "Timestamp")
    timestamp.text = datetime.now(UTC).isoformat(timespec="seconds")

    dictionary = ET.SubElement(root, _P + "DataDictionary", {"numberOfFields": "2"})
    for name in (TRANSACTION_FIELD, ITEM_FIELD):
        ET.SubElement(dictionary, _P + "DataField",
                      {"name": name, "optype": "categorical", "dataType": "string"})

    # the itemsets the rules use, numbered in order of first use; support from the rules
    itemset_ids: dict[tuple[int, ...], str] = {}
    itemset_support: list[float] = []
    ante_support = rules.column("antecedent_support").to_pylist()
    cons_support = rules.column("consequent_support").to_pylist()
    for ante, cons, s_x, s_y in zip(antecedents, consequents, ante_support, cons_support,
                                    strict=True):
        for itemset, support in ((tuple(ante), s_x), (tuple(cons), s_y)):
            if itemset not in itemset_ids:
                itemset_ids[itemset] = f"s{len(itemset_ids)}"
                itemset_support.append(support)

    support, confidence = _threshold(parameters, n_baskets, rules)
    model_attrib = {
        "modelName": f"basketry-{artifact.version}",
        "functionName": "associationRules",
        "numberOfTransactions": str(n_baskets),
        "minimumSupport": _float(support),
        "minimumConfidence": _float(confidence),
        "numberOfItems": str(len(items)),
        "numberOfItemsets": str(len(itemset_ids)),
        "numberOfRules": str(rules.num_rows),
    }
    if isinstance(parameters.get("algorithm"), str):
        model_attrib["algorithmName"] = parameters["algorithm"]
    sizes = (manifest.get("dataset") or {}).get("basket_size") or {}
    if isinstance(sizes.get("max"), int):
        model_attrib["maxNumberOfItemsPerTA"] = str(sizes["max"])
    if isinstance(sizes.get("mean"), float):
        model_attrib["avgNumberOfItemsPerTA"] = _float(sizes["mean"])
    if isinstance(parameters.get("max_len"), int):
        model_attrib["lengthLimit"] = str(parameters["max_len"])
    model = ET.SubElement(root, _P + "AssociationModel", model_attrib)

    kept = {k: v for k, v in manifest.items() if k not in _DERIVED_MANIFEST_FIELDS}
    _extension(model, "manifest").text = json.dumps(kept, sort_keys=True, allow_nan=True)

    schema = ET.SubElement(model, _P + "MiningSchema")
    ET.SubElement(schema, _P + "MiningField", {"name": TRANSACTION_FIELD, "usageType": "group"})
    ET.SubElement(schema, _P + "MiningField", {"name": ITEM_FIELD, "usageType": "active"})
    _output(model, k)

    for i, (item, label, count) in enumerate(zip(items, labels, item_counts, strict=True)):
        attrib = {"id": str(i), "value": _xml_text(item, "item")}
        if label is not None:
            attrib["mappedValue"] = _xml_text(label, f"the label of item {item!r}")
        element = ET.SubElement(model, _P + "Item", attrib)
        _extension(element, "item", {"count": str(count)})

    for itemset, key in itemset_ids.items():
        attrib = {"id": key, "numberOfItems": str(len(itemset))}
        support_value = itemset_support[int(key[1:])]
        if math.isfinite(support_value):
            attrib["support"] = _float(support_value)
        element = ET.SubElement(model, _P + "Itemset", attrib)
        for item_id in itemset:
            ET.SubElement(element, _P + "ItemRef", {"itemRef": str(item_id)})

    standard = {name: rules.column(name).to_pylist() for name in STANDARD_RULE_ATTRIBUTES}
    extension = {name: rules.column(name).to_pylist() for name in EXTENSION_RULE_COLUMNS}
    for row in range(rules.num_rows):
        attrib = {
            "id": f"r{row}",
            "antecedent": itemset_ids[tuple(antecedents[row])],
            "consequent": itemset_ids[tuple(consequents[row])],
        }
        for column, attribute in STANDARD_RULE_ATTRIBUTES.items():
            attrib[attribute] = _float(standard[column][row])
        element = ET.SubElement(model, _P + "AssociationRule", attrib)
        _extension(element, "rule", {
            name: (str(extension[name][row]) if name in COUNT_COLUMNS
                   else _float(extension[name][row]))
            for name in EXTENSION_RULE_COLUMNS
        })
    ET.indent(root, space=" ")
    return ET.ElementTree(root)


def export_pmml(
    model_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    k: int = 5,
    overwrite: bool = False,
) -> Path:
    """Write the model at ``model_dir`` as a PMML 4.4 file at ``out_path`` (atomically: a
    temporary sibling renamed into place) and return its path. The document's Output declares
    the ``k`` best recommendations by confidence for PMML scorers."""
    target = Path(out_path)
    _check_pmml_target(target, overwrite=overwrite)
    tree = pmml_document(model_dir, k=k)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    try:
        with open(staging, "xb") as fh:  # created with the usual permissions (umask)
            tree.write(fh, encoding="UTF-8", xml_declaration=True)
            fh.write(b"\n")
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return target


def _check_pmml_target(target: Path, *, overwrite: bool) -> None:
    """Refuse (nothing touched) to write a PMML document at ``target`` unless it is new or,
    with ``overwrite``, an empty file or a PMML document: replacing anything else (a data
    file, a directory, a link) would lose data."""
    if target.is_symlink():
        raise PMMLError(f"{target} is a symbolic link; give the path of a file")
    if not target.exists():
        return
    if target.is_dir():
        raise PMMLError(f"{target} is a directory; give a file name for the PMML document")
    if not overwrite:
        raise PMMLError(f"{target} already exists; choose another path or allow overwrite")
    if not target.is_file():
        raise PMMLError(f"{target} is not a regular file; choose another path")
    try:
        with open(target, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise PMMLError(f"{target}: cannot read it ({exc.strerror}); choose another path") \
            from None
    if head and b"<PMML" not in head:
        raise PMMLError(f"{target} is not a PMML document; overwrite replaces only a PMML "
                        "document, never other files: choose another path")


# -- reading ---------------------------------------------------------------------------------


class _NoDoctype(ET.TreeBuilder):
    """A tree builder that refuses a DOCTYPE (PMML needs none; entities are a classic XML
    attack), so a document is parsed without any entity expansion."""

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _DoctypeRefused


class _DoctypeRefused(Exception):
    pass


def _parse(path: Path) -> ET.Element:
    if not path.is_file():
        raise PMMLError(f"{path}: no such file")
    parser = ET.XMLParser(target=_NoDoctype())
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                parser.feed(chunk)
        return parser.close()
    except _DoctypeRefused:
        raise PMMLError(f"{path} declares a DOCTYPE; PMML documents need none and basketry "
                        "refuses them") from None
    except ET.ParseError as exc:
        raise PMMLError(f"{path} is not well-formed XML: {exc}") from None


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


class _Reader:
    """Parses one PMML file; every error names the file and the offending element."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str) -> PMMLError:
        return PMMLError(f"{self.path}: {message}")

    def attr(self, element: ET.Element, name: str, what: str) -> str:
        value = element.get(name)
        if value is None:
            raise self.fail(f"{what} lacks the required attribute {name!r}")
        return value

    def integer(self, element: ET.Element, name: str, what: str) -> int:
        text = self.attr(element, name, what)
        if not re.fullmatch(r"\s*\+?[0-9]+\s*", text):
            raise self.fail(f"{what}: {name}={text!r} is not a non-negative integer")
        return int(text)

    def number(self, element: ET.Element, name: str, what: str) -> float:
        text = self.attr(element, name, what)
        try:
            return float(text.strip())
        except ValueError:
            raise self.fail(f"{what}: {name}={text!r} is not a number") from None

    def basketry(self, element: ET.Element, tag: str) -> ET.Element | None:
        for ext in element.findall(_P + "Extension"):
            if ext.get("extender") == EXTENDER and ext.get("name") == "basketry":
                found = ext.find(_B + tag)
                if found is not None:
                    return found
        return None

    def model(self) -> ET.Element:
        root = _parse(self.path)
        ns, name = _local(root.tag)
        if name != "PMML":
            raise self.fail(f"not a PMML document (the root element is <{name}>, not <PMML>)")
        version = root.get("version")
        if ns != PMML_NS or version != PMML_VERSION:
            raise self.fail(
                f"PMML version {version!r} in namespace {ns or '(none)'!r}; basketry reads "
                f"PMML {PMML_VERSION} ({PMML_NS})"
            )
        models = [child for child in root if _local(child.tag)[1].endswith("Model")
                  or _local(child.tag)[1] in ("NeuralNetwork", "Scorecard")]
        associations = [m for m in models if m.tag == _P + "AssociationModel"]
        if not associations:
            found = ", ".join(f"<{_local(m.tag)[1]}>" for m in models) or "no model at all"
            raise self.fail(f"contains no AssociationModel (found {found})")
        if len(associations) > 1:
            raise self.fail(f"contains {len(associations)} AssociationModels; basketry imports "
                            "a document with exactly one")
        model = associations[0]
        function = model.get("functionName")
        if function != "associationRules":
            raise self.fail(f"the AssociationModel has functionName={function!r}, "
                            "not 'associationRules'")
        return model


def read_pmml(pmml_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse and check a PMML 4.4 AssociationModel written by ``export_pmml``: the keyword
    arguments of ``basketry.model.write_model`` (items and rules tables, counts, manifest
    fields), or ``PMMLError`` naming the file and the problem."""
    path = Path(pmml_path)
    reader = _Reader(path)
    model = reader.model()
    fail = reader.fail

    n_baskets = reader.integer(model, "numberOfTransactions", "the AssociationModel")
    manifest_element = reader.basketry(model, "manifest")
    if manifest_element is None:
        raise fail("the AssociationModel has no basketry manifest extension; basketry imports "
                   "the PMML documents `basketry export` writes")
    try:
        manifest = json.loads(manifest_element.text or "")
    except json.JSONDecodeError as exc:
        raise fail(f"the basketry manifest extension is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise fail("the basketry manifest extension is not a JSON object")

    # items: the row number is the item id, in document order
    item_index: dict[str, int] = {}
    items: list[str] = []
    labels: list[str | None] = []
    counts: list[int] = []
    for element in model.findall(_P + "Item"):
        key = reader.attr(element, "id", f"Item #{len(items) + 1}")
        what = f"Item id={key!r}"
        value = reader.attr(element, "value", what)
        if key in item_index:
            raise fail(f"two Items have the id {key!r}")
        extension = reader.basketry(element, "item")
        if extension is None:
            raise fail(f"{what} has no basketry extension with its count")
        item_index[key] = len(items)
        items.append(value)
        labels.append(element.get("mappedValue"))
        counts.append(reader.integer(extension, "count", f"the extension of {what}"))
    if len(set(items)) != len(items):
        seen: set[str] = set()
        for value in items:
            if value in seen:
                raise fail(f"the item value {value!r} appears in two Items")
            seen.add(value)

    itemsets: dict[str, list[int]] = {}
    for element in model.findall(_P + "Itemset"):
        key = reader.attr(element, "id", f"Itemset #{len(itemsets) + 1}")
        if key in itemsets:
            raise fail(f"two Itemsets have the id {key!r}")
        ids: list[int] = []
        for ref in element.findall(_P + "ItemRef"):
            target = reader.attr(ref, "itemRef", f"an ItemRef of Itemset id={key!r}")
            if target not in item_index:
                raise fail(f"Itemset id={key!r} refers to the unknown Item id {target!r}")
            ids.append(item_index[target])
        if not ids:
            raise fail(f"Itemset id={key!r} has no items")
        if len(set(ids)) != len(ids):
            raise fail(f"Itemset id={key!r} names an item twice")
        itemsets[key] = sorted(ids)

    columns: dict[str, list[Any]] = {name: [] for name in RULES_SCHEMA.names}
    for element in model.findall(_P + "AssociationRule"):
        what = f"AssociationRule #{len(columns['antecedent']) + 1}"
        if element.get("id") is not None:
            what += f" (id={element.get('id')!r})"
        sides = []
        for side in ("antecedent", "consequent"):
            key = reader.attr(element, side, what)
            if key not in itemsets:
                raise fail(f"{what} refers to the unknown Itemset id {key!r} as its {side}")
            sides.append(itemsets[key])
        if set(sides[0]) & set(sides[1]):
            raise fail(f"{what}: antecedent and consequent share items")
        columns["antecedent"].append(sides[0])
        columns["consequent"].append(sides[1])
        for column, attribute in STANDARD_RULE_ATTRIBUTES.items():
            columns[column].append(reader.number(element, attribute, what))
        extension = reader.basketry(element, "rule")
        if extension is None:
            raise fail(f"{what} has no basketry extension with its counts and measures")
        for name in EXTENSION_RULE_COLUMNS:
            read = reader.integer if name in COUNT_COLUMNS else reader.number
            columns[name].append(read(extension, name, f"the extension of {what}"))

    declared = {
        "numberOfItems": (len(items), "Item"),
        "numberOfItemsets": (len(itemsets), "Itemset"),
        "numberOfRules": (len(columns["antecedent"]), "AssociationRule"),
    }
    for attribute, (found, element_name) in declared.items():
        number = reader.integer(model, attribute, "the AssociationModel")
        if number != found:
            raise fail(f"the AssociationModel declares {attribute}={number} but has {found} "
                       f"{element_name} elements")

    rules = pa.table(
        {
            name: pa.array(values, RULES_SCHEMA.field(name).type)
            for name, values in columns.items()
        },
        schema=RULES_SCHEMA,
    )
    extra = {k: v for k, v in manifest.items()
             if k not in ("parameters", "scoring", "dataset", "metrics")
             and k not in _DERIVED_MANIFEST_FIELDS}
    return {
        "items": items_table(np.array(items, dtype=object), np.array(counts, dtype=np.int64),
                             np.array(labels, dtype=object)),
        "rules": rules,
        "n_baskets": n_baskets,
        "parameters": manifest.get("parameters") or {},
        "scoring": manifest.get("scoring") or None,
        "dataset": manifest.get("dataset") or None,
        "metrics": manifest.get("metrics") or None,
        "extra": extra or None,
    }


def import_pmml(
    pmml_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Read the PMML document at ``pmml_path`` (as written by ``export_pmml``) into a model
    directory at ``out_dir``, written atomically by ``basketry.model.write_model``. Nothing is
    written when the document is refused: not PMML basketry reads, content that loading would
    refuse (an invalid scoring object, counts or measures out of range, ...), or an ``out_dir``
    that exists and is not an empty directory or (with ``overwrite``) a model directory."""
    target = Path(out_dir)
    try:  # before the document is read: it may be large
        check_model_target(target, overwrite=overwrite)
    except ModelError as exc:
        raise PMMLError(str(exc)) from None
    model = read_pmml(pmml_path)
    # the content as loading checks it, so a model that would not load is never written
    try:
        validate_content(model["items"], model["rules"], n_baskets=model["n_baskets"],
                         scoring=model["scoring"], where=str(pmml_path))
    except ModelError as exc:
        raise PMMLError(str(exc)) from None
    return write_model(target, overwrite=overwrite, **model)
