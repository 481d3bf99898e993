"""PMML 4.4 export and import: exact round trip, validity against the PMML 4.4 schema, agreement
with an independent PMML evaluator (JPMML), and the CLI's handling of bad documents."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import jpmml_evaluator
import jpype
import numpy as np
import pyarrow as pa
import pytest
from lxml import etree
from typer.testing import CliRunner

from basketry.cli import app
from basketry.data import read_baskets, sample_path
from basketry.mining import AssociationMiner
from basketry.model import (
    RULES_SCHEMA,
    RuleScorer,
    items_table,
    load_model,
    read_artifact,
    write_model,
)
from basketry.model.validate import UNIT_MEASURES
from basketry.training import save_model
from basketry.training.pmml import PMML_NS, PMMLError, export_pmml, import_pmml

runner = CliRunner()

BASKETS = [
    "bread milk", "bread butter milk", "beer chips", "bread milk eggs", "beer chips salsa",
    "milk eggs", "bread butter", "beer salsa", "bread milk butter", "chips salsa",
    "bread butter milk eggs", "beer chips salsa bread",
] * 3
LABELS = {
    "bread": "Bread, white", "milk": 'Milk "fresh" & <cream>', "butter": "Beurre doux à 82 %",
    "beer": "Beer 🍺", "chips": "", "salsa": "Salsa\ttomato\nmild",
}


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    """A mined model with labels (one missing) and multi-item consequents."""
    root = tmp_path_factory.mktemp("small")
    rows = ["order,sku,description"]
    for n, line in enumerate(BASKETS):
        for item in line.split():
            label = LABELS.get(item)
            quoted = "" if label is None else '"' + label.replace('"', '""') + '"'
            rows.append(f"{n},{item},{quoted}")
    data = root / "sales.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    baskets = read_baskets(data, transaction_col="order", item_col="sku",
                           label_col="description")
    miner = AssociationMiner(min_support=0.1, min_confidence=0.3, multi_consequent=True)
    miner.fit(baskets)
    return save_model(root / "model", miner, baskets, scoring="smoothed")


@pytest.fixture(scope="module")
def sample_model(tmp_path_factory) -> Path:
    """The bundled UCI Online Retail sample mined as `basketry demo` does."""
    baskets = read_baskets(sample_path())
    miner = AssociationMiner(min_support=0.01, min_confidence=0.2).fit(baskets)
    return save_model(tmp_path_factory.mktemp("sample") / "model", miner, baskets)


@pytest.fixture(scope="module")
def edge_model(tmp_path_factory) -> Path:
    """A hand-made model whose floats need every digit (subnormal, 0.1 + 0.2, -0.0, inf) and
    whose strings need XML escaping."""
    items = items_table(
        np.array(["a & b", "<c>", "café 'd'", "e\"f"], dtype=object),
        np.array([7, 5, 3, 9]),
        np.array([None, "", "tab\there\nnew line\r\nCRLF", "ünïcødé 🛒 ]]>"], dtype=object),
    )
    floats = [0.1 + 0.2, 1 / 3, 5e-324, 2.0**-1074 * 3, 1e300, 0.30000000000000004, -0.0]
    columns: dict[str, list] = {name: [] for name in RULES_SCHEMA.names}
    shapes = [([0], [1]), ([0, 2], [3]), ([3], [0, 1]), ([1, 2, 3], [0])]
    for row, (ante, cons) in enumerate(shapes):
        columns["antecedent"].append(ante)
        columns["consequent"].append(cons)
        for j, name in enumerate(RULES_SCHEMA.names[2:]):
            if name in ("count", "antecedent_count", "consequent_count"):
                columns[name].append(2**40 + row * 7 + j)
            else:
                value = floats[(row + j) % len(floats)]
                if name in UNIT_MEASURES and value > 1:  # loading checks these are in [0, 1]
                    value = 1 / value
                columns[name].append(value)
    columns["conviction"][1] = float("inf")
    rules = pa.table(columns, schema=RULES_SCHEMA)
    return write_model(tmp_path_factory.mktemp("edge") / "model", items=items, rules=rules,
                       n_baskets=2**41, parameters={"min_support": 0.1, "note": [1, "x", None]},
                       scoring={"method": "confidence"}, metrics={"hit_rate@10": 0.1 + 0.2},
                       extra={"future_field": {"kept": True}})


def _bits(table: pa.Table) -> dict[str, list]:
    """Every column, with float64 columns as their raw bit patterns (so -0.0 != 0.0)."""
    out = {}
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_floating(field.type):
            out[field.name] = column.to_numpy().view(np.int64).tolist()
        else:
            out[field.name] = column.to_pylist()
    return out


def _assert_same_model(original: Path, imported: Path) -> None:
    a, b = read_artifact(original), read_artifact(imported)
    assert a.items.schema == b.items.schema and a.rules.schema == b.rules.schema
    assert a.items.equals(b.items)
    assert a.rules.equals(b.rules)
    assert _bits(a.items) == _bits(b.items)
    assert _bits(a.rules) == _bits(b.rules)
    ignore = ("created_at", "basketry_version")
    assert {k: v for k, v in a.manifest.items() if k not in ignore} == {
        k: v for k, v in b.manifest.items() if k not in ignore}
    assert a.version == b.version  # same tables, parameters, scoring and fingerprint


@pytest.mark.parametrize("name", ["small_model", "sample_model", "edge_model"])
def test_round_trip_is_exact(name, request, tmp_path):
    original: Path = request.getfixturevalue(name)
    pmml = export_pmml(original, tmp_path / "model.pmml")
    imported = import_pmml(pmml, tmp_path / "imported")
    _assert_same_model(original, imported)

    model, again = load_model(original), load_model(imported)
    rules = read_artifact(original).rules
    antecedents = sorted({tuple(a) for a in rules.column("antecedent").to_pylist()})
    baskets = [[], ["NO-SUCH-ITEM"], model.items[:3], model.items[1:4]]
    baskets += [[model.items[i] for i in a] for a in antecedents[:: len(antecedents) // 50 + 1]]
    for basket in baskets:
        for k in (1, 5, 100):
            assert again.recommend(basket, k=k) == model.recommend(basket, k=k), basket

    # exporting the imported model gives the same document (but for the time of writing)
    second = export_pmml(imported, tmp_path / "again.pmml")
    stamp = re.compile(rb"<Timestamp>[^<]*</Timestamp>")
    assert stamp.sub(b"", second.read_bytes()) == stamp.sub(b"", pmml.read_bytes())


def test_the_document_says_what_pmml_consumers_read(small_model, tmp_path):
    pmml = export_pmml(small_model, tmp_path / "model.pmml", k=3)
    ns = {"p": PMML_NS}
    root = etree.parse(str(pmml)).getroot()
    artifact = read_artifact(small_model)
    assert root.get("version") == "4.4"
    assert root.find("p:Header/p:Application", ns).get("name") == "basketry"
    assert root.find("p:Header/p:Timestamp", ns).text
    model = root.find("p:AssociationModel", ns)
    assert model.get("functionName") == "associationRules"
    assert model.get("numberOfTransactions") == str(len(BASKETS))
    assert float(model.get("minimumSupport")) == 4 / 36  # the exact minimum count over N
    assert float(model.get("minimumConfidence")) == 0.3
    assert int(model.get("numberOfItems")) == artifact.items.num_rows == 7
    assert int(model.get("numberOfRules")) == artifact.rules.num_rows
    fields = {f.get("name"): f.get("usageType") for f in model.iterfind("p:MiningSchema/*", ns)}
    assert fields == {"transaction": "group", "item": "active"}
    items = model.findall("p:Item", ns)
    assert [i.get("value") for i in items] == artifact.items.column("item").to_pylist()
    assert [i.get("mappedValue") for i in items] == artifact.items.column("label").to_pylist()
    itemsets = {s.get("id"): [int(r.get("itemRef")) for r in s.iterfind("p:ItemRef", ns)]
                for s in model.iterfind("p:Itemset", ns)}
    assert len(itemsets) == int(model.get("numberOfItemsets"))
    rules = model.findall("p:AssociationRule", ns)
    assert any(len(itemsets[r.get("consequent")]) > 1 for r in rules)  # multi-item consequents
    for row, rule in enumerate(artifact.rules.to_pylist()):
        element = rules[row]
        assert itemsets[element.get("antecedent")] == rule["antecedent"]
        assert itemsets[element.get("consequent")] == rule["consequent"]
        for attribute, column in (("support", "support"), ("confidence", "confidence"),
                                  ("lift", "lift"), ("leverage", "leverage"),
                                  ("affinity", "jaccard")):
            assert float(element.get(attribute)) == rule[column]
    outputs = model.findall("p:Output/p:OutputField", ns)
    assert len(outputs) == 9 and {o.get("rank") for o in outputs} == {"1", "2", "3"}


# -- the PMML 4.4 schema ------------------------------------------------------------------

def _jpmml_jar(prefix: str) -> Path:
    jars = sorted((Path(jpmml_evaluator.__file__).parent / "dependencies").glob(f"{prefix}-*.jar"))
    jars = [j for j in jars if re.fullmatch(rf"{prefix}-[0-9.]+\.jar", j.name)]
    assert jars, f"no {prefix} jar in the installed jpmml_evaluator"
    return jars[-1]


@pytest.fixture(scope="module")
def schemas() -> dict[str, etree.XMLSchema]:
    """The PMML 4.4 XML Schema as JPMML ships it (pmml.xsd in JPMML's pmml-model jar, BSD-3:
    the DMG's PMML 4.4 schema plus JPMML's vendor extensions, attributes and enumeration values
    named ``x-...``), and the same with every ``x-`` extension removed: the DMG's definitions
    alone."""
    with zipfile.ZipFile(_jpmml_jar("pmml-model")) as jar:
        source = jar.read("pmml.xsd")
    document = etree.fromstring(source)
    assert document.get("targetNamespace") == PMML_NS
    xs = {"xs": "http://www.w3.org/2001/XMLSchema"}
    strict = etree.fromstring(source)
    removed = strict.xpath("//xs:attribute[starts-with(@name, 'x-')]"
                           " | //xs:enumeration[starts-with(@value, 'x-')]", namespaces=xs)
    assert removed
    for node in removed:
        node.getparent().remove(node)
    leftover = strict.xpath("//*[starts-with(@name, 'x-') or starts-with(@value, 'x-')"
                            " or starts-with(@ref, 'x-')]")
    assert leftover == []
    return {"jpmml": etree.XMLSchema(document), "dmg": etree.XMLSchema(strict)}


@pytest.mark.parametrize("name", ["small_model", "sample_model", "edge_model"])
def test_export_is_valid_pmml_4_4(name, request, schemas, tmp_path):
    pmml = export_pmml(request.getfixturevalue(name), tmp_path / "model.pmml")
    document = etree.parse(str(pmml))
    for which, schema in schemas.items():
        assert schema.validate(document), (which, schema.error_log)


def test_the_schema_check_catches_a_broken_document(small_model, schemas, tmp_path):
    pmml = export_pmml(small_model, tmp_path / "model.pmml")
    document = etree.parse(str(pmml))
    rule = document.find(f".//{{{PMML_NS}}}AssociationRule")
    del rule.attrib["confidence"]  # required by PMML
    stray = document.find(f".//{{{PMML_NS}}}MiningSchema")
    for schema in schemas.values():
        assert not schema.validate(document)
    rule.set("confidence", "0.5")
    assert all(schema.validate(document) for schema in schemas.values())
    stray.addnext(etree.Element(f"{{{PMML_NS}}}Itemset"))  # before Output, and without an id
    assert not any(schema.validate(document) for schema in schemas.values())


# -- an independent evaluator: JPMML, through its Java API ---------------------------------

def _jpmml(pmml: Path):
    evaluator = jpmml_evaluator.make_evaluator(str(pmml), backend="jpype").verify()
    algorithm = jpype.JClass("org.dmg.pmml.OutputField$Algorithm")
    array_list, hash_map = jpype.JClass("java.util.ArrayList"), jpype.JClass("java.util.HashMap")

    def evaluate(basket: list[str]):
        items = array_list()
        for item in basket:
            items.add(item)
        arguments = hash_map()
        arguments.put("item", items)
        results = evaluator.javaEvaluator.evaluate(arguments)
        association = results.get(None)
        fired = {
            name: {int(str(rule.getId())[1:]): float(rule.getConfidence())
                   for rule in association.getRuleValues(getattr(algorithm, constant))}
            for name, constant in (("recommendation", "RECOMMENDATION"),
                                   ("exclusive", "EXCLUSIVE_RECOMMENDATION"),
                                   ("association", "RULE_ASSOCIATION"))
        }
        return fired, results

    return evaluate


def _fired_by_basketry(rules: list[dict], ids: set[int]) -> dict[str, set[int]]:
    """The rules of basketry's own table that fire for a basket of item ids, per PMML's
    three algorithms."""
    out: dict[str, set[int]] = {"recommendation": set(), "exclusive": set(), "association": set()}
    for row, rule in enumerate(rules):
        if set(rule["antecedent"]) <= ids:
            out["recommendation"].add(row)
            if set(rule["consequent"]) <= ids:
                out["association"].add(row)
            else:
                out["exclusive"].add(row)
    return out


@pytest.mark.parametrize("name", ["small_model", "sample_model"])
def test_jpmml_fires_the_same_rules_and_recommends_the_same_items(name, request, tmp_path):
    model_dir: Path = request.getfixturevalue(name)
    k = 5
    pmml = export_pmml(model_dir, tmp_path / "model.pmml", k=k)
    evaluate = _jpmml(pmml)
    artifact = read_artifact(model_dir)
    items = artifact.items.column("item").to_pylist()
    rules = artifact.rules.to_pylist()
    by_confidence = RuleScorer(artifact.items, artifact.rules,
                               n_baskets=artifact.manifest["counts"]["n_baskets"],
                               scoring={"method": "confidence"})

    antecedents = sorted({tuple(r["antecedent"]) for r in rules}, key=lambda a: (-len(a), a))
    popular = [items[i] for i in by_confidence.popular[:3].tolist()]
    baskets = [[items[i] for i in a] for a in antecedents[:: max(1, len(antecedents) // 12)]]
    first = rules[0]
    baskets += [
        [items[i] for i in first["antecedent"] + first["consequent"]],  # consequent in basket
        popular, [*popular[:1], "NO-SUCH-ITEM"], [], ["NO-SUCH-ITEM"],
    ]
    n_fired = 0
    for basket in baskets:
        ids = {items.index(i) for i in basket if i in items}
        fired, results = evaluate(basket)
        expected = _fired_by_basketry(rules, ids)
        assert {a: set(f) for a, f in fired.items()} == expected, basket
        for rows in fired.values():
            assert all(rows[row] == rules[row]["confidence"] for row in rows)  # bit-exact
        n_fired += len(expected["exclusive"])

        # the Output: the k best exclusive recommendations by confidence
        best = sorted((rules[row]["confidence"] for row in expected["exclusive"]), reverse=True)
        got = [results.get(f"confidence_{rank}") for rank in range(1, k + 1)]
        assert [None if c is None else float(c) for c in got] == (
            best[:k] + [None] * (k - len(best[:k])))
        for rank in range(1, min(k, len(best)) + 1):
            row = int(str(results.get(f"ruleId_{rank}"))[1:])
            assert row in expected["exclusive"]
            assert rules[row]["confidence"] == best[rank - 1]
            consequent = [str(v) for v in results.get(f"consequent_{rank}")]
            assert consequent == [items[i] for i in rules[row]["consequent"]]

        # the items basketry recommends (scored by confidence) are JPMML's single-item
        # consequents, best confidence per item, with the same scores (ties in any order)
        theirs: dict[str, float] = {}
        for row, confidence in fired["exclusive"].items():
            if len(rules[row]["consequent"]) == 1:
                item = items[rules[row]["consequent"][0]]
                theirs[item] = max(confidence, theirs.get(item, -1.0))
        ours = by_confidence.recommend(basket, k=len(items))
        from_rules = {r.item: r.score for r in ours.items if not r.fallback}
        assert from_rules == theirs, basket
        scores = [r.score for r in ours.items if not r.fallback]
        assert scores == sorted(scores, reverse=True)
    assert n_fired > 0


# -- errors and the CLI --------------------------------------------------------------------

GOOD_HEAD = (f'<?xml version="1.0"?><PMML xmlns="{PMML_NS}" version="4.4"><Header/>'
             '<DataDictionary/>')


def _document(small_pmml: bytes, old: str, new: str) -> bytes:
    text = small_pmml.decode()
    assert old in text
    return text.replace(old, new, 1).encode()


BAD_DOCUMENTS = {
    "not-xml": (lambda good: b"<PMML version='4.4'><Header>", "not well-formed XML"),
    "not-pmml": (lambda good: b"<model><rules/></model>", "not a PMML document"),
    "pmml-4.3": (lambda good: good.replace(b"PMML-4_4", b"PMML-4_3")
                 .replace(b'version="4.4"', b'version="4.3"'), "PMML version '4.3'"),
    "tree-model": (lambda good: (GOOD_HEAD + '<TreeModel functionName="classification"/>'
                                 "</PMML>").encode(), "no AssociationModel (found <TreeModel>)"),
    "unknown-itemset": (lambda good: _document(good, 'consequent="s1"', 'consequent="s999"'),
                        "unknown Itemset id 's999'"),
    "unknown-item": (lambda good: _document(good, 'itemRef="0"', 'itemRef="zzz"'),
                     "unknown Item id 'zzz'"),
    "wrong-rule-count": (lambda good: re.sub(rb'numberOfRules="\d+"', b'numberOfRules="1"',
                                             good), "declares numberOfRules=1"),
    "bad-number": (lambda good: _document(good, 'confidence="', 'confidence="high'),
                   "is not a number"),
    "doctype": (lambda good: good.replace(
        b"<PMML ", b'<!DOCTYPE PMML [<!ENTITY a "aaaaaaaaaa">]><PMML ', 1), "DOCTYPE"),
    "foreign": (lambda good: re.sub(rb'<Extension extender="basketry".*?</Extension>\s*', b"",
                                    good, flags=re.S), "basketry manifest extension"),
}


@pytest.fixture(scope="module")
def small_pmml(small_model, tmp_path_factory) -> bytes:
    return export_pmml(small_model, tmp_path_factory.mktemp("pmml") / "small.pmml").read_bytes()


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
def test_bad_pmml_exits_2_names_the_problem_and_writes_nothing(case, small_pmml, tmp_path,
                                                               monkeypatch):
    make, message = BAD_DOCUMENTS[case]
    monkeypatch.chdir(tmp_path)  # short relative paths: the message is not wrapped
    Path("in.pmml").write_bytes(make(small_pmml))
    result = runner.invoke(app, ["import", "in.pmml", "--out", "model"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert text.startswith("error: in.pmml") and message in text, text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pmml"]  # nothing written
    with pytest.raises(PMMLError, match=re.escape(message)):
        import_pmml("in.pmml", "model")


def test_missing_file_is_named(tmp_path):
    result = runner.invoke(app, ["import", str(tmp_path / "nope.pmml"), "--out",
                                 str(tmp_path / "m")])
    assert result.exit_code == 2 and "nope.pmml" in result.output
    assert list(tmp_path.iterdir()) == []


def test_cli_export_then_import(small_model, tmp_path):
    pmml, out = tmp_path / "model.pmml", tmp_path / "imported"
    result = runner.invoke(app, ["export", str(small_model), "--format", "pmml",
                                 "--out", str(pmml)])
    assert result.exit_code == 0, result.output
    assert "PMML 4.4" in result.output and pmml.is_file()
    result = runner.invoke(app, ["import", str(pmml), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_artifact(small_model).version in result.output
    _assert_same_model(small_model, out)

    # neither command replaces what exists without --overwrite
    before = pmml.read_bytes()
    again = runner.invoke(app, ["export", str(small_model), "--out", str(pmml)])
    assert again.exit_code == 2 and "already exists" in again.output
    assert pmml.read_bytes() == before
    assert runner.invoke(app, ["import", str(pmml), "--out", str(out)]).exit_code == 2
    assert runner.invoke(app, ["export", str(small_model), "--out", str(pmml),
                               "--overwrite"]).exit_code == 0
    assert runner.invoke(app, ["import", str(pmml), "--out", str(out),
                               "--overwrite"]).exit_code == 0
    _assert_same_model(small_model, out)


def test_cli_export_refuses_bad_requests(small_model, tmp_path):
    out = tmp_path / "x.pmml"
    other = runner.invoke(app, ["export", str(small_model), "--format", "onnx", "--out", str(out)])
    assert other.exit_code == 2 and "pmml" in other.output
    missing = runner.invoke(app, ["export", str(tmp_path / "no-model"), "--out", str(out)])
    assert missing.exit_code == 2 and "no-model" in missing.output
    assert not out.exists()


def test_strings_xml_cannot_carry_are_refused_and_nothing_is_written(tmp_path):
    items = items_table(np.array(["ok", "bell\x07"], dtype=object), np.array([2, 1]))
    rules = pa.table({name: [] for name in RULES_SCHEMA.names}, schema=RULES_SCHEMA)
    model = write_model(tmp_path / "model", items=items, rules=rules, n_baskets=2,
                        parameters={})
    with pytest.raises(PMMLError, match="U\\+0007"):
        export_pmml(model, tmp_path / "model.pmml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
