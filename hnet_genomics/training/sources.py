"""Open the sequence source a config asks for: a genome FASTA, or UTF-8 text for general-language runs."""

from __future__ import annotations

from pathlib import Path

from hnet_genomics.config import DataConfig


def open_source(path: str | Path, data_cfg: DataConfig):
    if data_cfg.kind == "text":
        from hnet_genomics.data.text import TextCorpus

        return TextCorpus(path)
    from hnet_genomics.data.genome import Genome

    return Genome(path)
