# Genome -> bgzip + faidx index -> chrom.sizes -> train/valid/test intervals.


rule fetch_hg38:
    output:
        fasta=f"{R}/genome/hg38.fa.gz",
        fai=f"{R}/genome/hg38.fa.gz.fai",
        gzi=f"{R}/genome/hg38.fa.gz.gzi",
        splits=[f"{R}/genome/sequences_human.bed"] if SPLIT_SOURCE == "basenji" else [],
    params:
        dest=lambda wc, output: Path(output.fasta).parent,
        source=config["hg38_source"],
    log:
        f"{LOGS}/fetch_hg38.log",
    threads: threads_of("light")
    resources:
        **resources_of("light"),
    shell:
        "hnet-genomics data fetch-hg38 --dest {params.dest:q} --source {params.source} --threads {threads} --quiet "
        "> {log:q} 2>&1"


rule prepare_genome:
    input:
        fasta=[] if GENOME_SOURCE in ("demo", "hg38") else [GENOME_SOURCE],
    output:
        fasta=f"{R}/genome/genome.fa.gz",
        fai=f"{R}/genome/genome.fa.gz.fai",
        gzi=f"{R}/genome/genome.fa.gz.gzi",
    params:
        source="--demo human" if GENOME_SOURCE == "demo" else f"--fasta {shlex.quote(GENOME_SOURCE)}",
    log:
        f"{LOGS}/prepare_genome.log",
    threads: threads_of("light")
    resources:
        **resources_of("light"),
    shell:
        "hnet-genomics data prepare {params.source} --out {output.fasta:q} --threads {threads} --quiet > {log:q} 2>&1"


rule chrom_sizes:
    input:
        fasta=GENOME_FASTA,
        index=GENOME_INDEX,
    output:
        f"{R}/genome/chrom.sizes",
    log:
        f"{LOGS}/chrom_sizes.log",
    threads: threads_of("light")
    resources:
        **resources_of("light"),
    shell:
        "hnet-genomics data sizes --fasta {input.fasta:q} --out {output:q} > {log:q} 2>&1"


rule split_intervals:
    input:
        fasta=GENOME_FASTA,
        index=GENOME_INDEX,
        intervals=[] if SPLIT_SOURCE is None else [
            f"{R}/genome/sequences_human.bed" if SPLIT_SOURCE == "basenji" else SPLIT_SOURCE],
    output:
        SPLITS_BED,
    params:
        config=MODELS[MAIN],
        intervals=lambda wc, input: f"--intervals {shlex.quote(input.intervals[0])}" if input.intervals else "",
    log:
        f"{LOGS}/split_intervals.log",
    threads: threads_of("light")
    resources:
        **resources_of("light"),
    shell:
        "hnet-genomics data split --fasta {input.fasta:q} --config {params.config:q} {params.intervals} "
        "--out {output:q} > {log:q} 2>&1"
