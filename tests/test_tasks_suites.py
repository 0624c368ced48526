"""The suite registries and the quoted published numbers: typed, complete, consistent with each other."""

from __future__ import annotations

import pytest
import yaml

from hnet_genomics.errors import ConfigError
from hnet_genomics.reporting import published as published_module
from hnet_genomics.reporting.published import load_published
from hnet_genomics.tasks.benchmark_commands import check_published
from hnet_genomics.tasks.suites import METRICS, SUITES, load_suite


def test_genomic_benchmarks_registry_holds_the_nine_tasks_with_their_class_folders():
    suite = load_suite("genomic-benchmarks")
    assert suite.layout == "class-folders" and suite.fetch.via == "genomic-benchmarks" and suite.fetch.version == 0
    names = [t.name for t in suite.tasks]
    assert len(names) == 9 and "drosophila_enhancers_stark" in names and "dummy_mouse_enhancers_ensembl" in names
    assert all(t.metric == "accuracy" and t.max_len == 1024 for t in suite.tasks)
    regulatory = suite.task("human_ensembl_regulatory")
    assert regulatory.classes == ("enhancer", "ocr", "promoter")  # sorted folder names, never directory order
    assert all(list(t.classes) == sorted(t.classes) for t in suite.tasks)
    assert {t.name for t in suite.tasks if t.stranded} == {
        "human_nontata_promoters",
        "demo_coding_vs_intergenomic_seqs",
    }


def test_nucleotide_transformer_registry_scores_each_task_as_its_published_results_do():
    suite = load_suite("nucleotide-transformer")
    assert suite.layout == "split-files" and len(suite.tasks) == 18
    assert suite.fetch.via == "hub" and len(suite.fetch.revision or "") == 40
    metric = {t.name: t.metric for t in suite.tasks}
    histone = [n for n in metric if n.startswith("H")]
    assert len(histone) == 10 and {metric[n] for n in histone} == {"mcc"}
    assert metric["enhancers"] == metric["enhancers_types"] == "mcc"
    assert {metric[n] for n in ("promoter_all", "promoter_no_tata", "promoter_tata")} == {"f1_macro"}
    assert metric["splice_sites_acceptors"] == metric["splice_sites_donors"] == "f1_macro"
    assert metric["splice_sites_all"] == "accuracy"
    assert {t.max_len for t in suite.tasks if t.group == "histone marks"} == {500}
    assert suite.task("enhancers_types").classes == ("0", "1", "2")


@pytest.mark.parametrize("name", SUITES)
def test_every_quoted_number_names_a_task_of_its_suite_and_a_cited_table(name):
    suite = load_suite(name)
    check_published(suite)
    published = load_published(name)
    assert published.columns and all(t.metric in METRICS for t in suite.tasks)
    for col in published.columns:
        if col.source is None:
            assert not col.results  # an empty column: no result found, and the table says so
            continue
        assert col.source.citation and col.source.table.startswith("Table") and col.source.url.startswith("https://")
        for q in col.results.values():
            assert -1.0 <= q.value <= 1.0 and (q.spread is None or q.spread >= 0)


def test_quoted_numbers_keep_the_printed_digits_and_percentages_become_fractions_exactly():
    gb = {(c.model, c.source.key if c.source else None): c for c in load_published("genomic-benchmarks").columns}
    caduceus_ps = gb["Caduceus-PS (470K)", "caduceus"].results["dummy_mouse_enhancers_ensembl"]
    assert (caduceus_ps.value, caduceus_ps.spread, caduceus_ps.printed) == (0.793, 0.058, "0.793 ± 0.058")
    hyena_own = gb["HyenaDNA", "hyenadna"].results["human_nontata_promoters"]
    assert hyena_own.value == 0.966 and hyena_own.spread is None and hyena_own.printed == "96.6"
    assert "drosophila_enhancers_stark" not in gb["HyenaDNA (436K)", "caduceus"].results  # not reported: left empty
    nt = {c.model: c for c in load_published("nucleotide-transformer").columns}
    assert nt["NT-v2 (500M)"].results["splice_sites_donors"].value == 0.985
    assert all(len(c.results) == 18 for c in nt.values())


def test_a_published_file_with_an_unknown_key_or_a_spread_the_source_lacks_is_refused(tmp_path, monkeypatch):
    text = (published_module.PUBLISHED_DIR / "genomic-benchmarks.yaml").read_text()
    monkeypatch.setattr(published_module, "PUBLISHED_DIR", tmp_path)
    data = yaml.safe_load(text)
    data["columns"][3]["results"]["human_enhancers_cohn"] = [74.2, 1.0]  # HyenaDNA's own table prints no spread
    (tmp_path / "genomic-benchmarks.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="a spread is given but source 'hyenadna' prints none"):
        load_published("genomic-benchmarks")
    data = yaml.safe_load(text)
    data["sources"]["caduceus"]["year"] = 2024
    (tmp_path / "genomic-benchmarks.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"sources\.caduceus: expected the keys"):
        load_published("genomic-benchmarks")


def test_task_selection_keeps_the_suite_order_and_names_unknown_tasks():
    suite = load_suite("nucleotide-transformer")
    assert [t.name for t in suite.select(["promoter_all", "H3"])] == ["H3", "promoter_all"]
    with pytest.raises(ConfigError, match="'H3K27ac' is not a task of nucleotide-transformer"):
        suite.select(["H3K27ac"])
    with pytest.raises(ConfigError, match="H3 given twice"):
        suite.select(["H3", "H3"])
    with pytest.raises(ConfigError, match="unknown suite 'gue'"):
        load_suite("gue")
