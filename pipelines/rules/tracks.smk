# Chunk boundaries as genome-browser tracks, and their enrichment at annotated features.


rule export_boundaries:
    input:
        run=f"{R}/pretrain/{{run}}",
        fasta=GENOME_FASTA,
        index=GENOME_INDEX,
        regions=[REGIONS] if REGIONS else [],
    output:
        directory(f"{R}/tracks/{{run}}"),
    params:
        prefix=lambda wc: f"{R}/tracks/{wc.run}/{wc.run}",
        regions=regions_flag(REGIONS),
    log:
        f"{LOGS}/export_boundaries.{{run}}.log",
    threads: threads_of("infer")
    resources:
        **resources_of("infer"),
    shell:
        "OMP_NUM_THREADS={threads} hnet-genomics boundaries --model {input.run:q}/model --fasta {input.fasta:q} "
        "{params.regions} --out {params.prefix:q} --threads {threads} --quiet > {log:q} 2>&1"


rule boundary_enrichment:
    input:
        tracks=f"{R}/tracks/{{run}}",
        annotation=[ANNOTATION] if ANNOTATION else [],
    output:
        directory(f"{R}/enrichment/{{run}}"),
    log:
        f"{LOGS}/boundary_enrichment.{{run}}.log",
    threads: 1
    resources:
        **resources_of("light"),
    shell:
        "hnet-genomics enrichment --boundaries {input.tracks:q}/{wildcards.run}.stage1.bed "
        "--annotation {input.annotation:q} --out {output:q} > {log:q} 2>&1"


rule prepare_boundaries_fasta:
    input:
        fasta=[BOUNDARIES_FASTA] if BOUNDARIES_FASTA else [],
    output:
        fasta=f"{R}/boundaries/{BOUNDARIES['name']}.input.fa.gz",
        fai=f"{R}/boundaries/{BOUNDARIES['name']}.input.fa.gz.fai",
        gzi=f"{R}/boundaries/{BOUNDARIES['name']}.input.fa.gz.gzi",
    log:
        f"{LOGS}/prepare_boundaries_fasta.log",
    threads: 1
    resources:
        **resources_of("light"),
    shell:
        "hnet-genomics data prepare --fasta {input.fasta:q} --out {output.fasta:q} --threads {threads} --quiet "
        "> {log:q} 2>&1"


CUSTOM = f"{R}/boundaries/{BOUNDARIES['name']}"
CUSTOM_INPUT = dict(
    model=BOUNDARIES_MODEL,
    fasta=rules.prepare_boundaries_fasta.output.fasta if BOUNDARIES_FASTA else GENOME_FASTA,
    index=[rules.prepare_boundaries_fasta.output.fai, rules.prepare_boundaries_fasta.output.gzi]
    if BOUNDARIES_FASTA else GENOME_INDEX,
    regions=[BOUNDARIES_REGIONS] if BOUNDARIES_REGIONS else [],
)
CUSTOM_BOUNDARIES = (
    "OMP_NUM_THREADS={threads} hnet-genomics boundaries --model {params.model:q} --fasta {input.fasta:q} "
    "{params.regions} --out {params.prefix:q} --threads {threads} --quiet"
)


if BOUNDARIES_SHARDS == 1:

    rule custom_boundaries:
        input:
            **CUSTOM_INPUT,
        output:
            directory(CUSTOM),
        params:
            model=model_dir_flag(BOUNDARIES_MODEL),
            prefix=f"{CUSTOM}/{BOUNDARIES['name']}",
            regions=regions_flag(BOUNDARIES_REGIONS),
        log:
            f"{LOGS}/custom_boundaries.log",
        threads: threads_of("infer")
        resources:
            **resources_of("infer"),
        shell:
            CUSTOM_BOUNDARIES + " > {log:q} 2>&1"

else:

    rule custom_boundaries_shard:
        input:
            **CUSTOM_INPUT,
        output:
            temp(directory(f"{CUSTOM}.shards/{{shard}}")),
        params:
            model=model_dir_flag(BOUNDARIES_MODEL),
            prefix=lambda wc: f"{CUSTOM}.shards/{wc.shard}/{BOUNDARIES['name']}",
            regions=regions_flag(BOUNDARIES_REGIONS),
            shard=lambda wc: f"{wc.shard}/{BOUNDARIES_SHARDS}",
        log:
            f"{LOGS}/custom_boundaries.shard{{shard}}.log",
        threads: threads_of("infer")
        resources:
            **resources_of("infer"),
        shell:
            CUSTOM_BOUNDARIES + " --shard {params.shard} --formats bed,bedgraph > {log:q} 2>&1"

    rule custom_boundaries:
        input:
            expand(f"{CUSTOM}.shards/{{shard}}", shard=range(1, BOUNDARIES_SHARDS + 1)),
        output:
            directory(CUSTOM),
        params:
            shards=lambda wc, input: " ".join(shlex.quote(f"{d}/{BOUNDARIES['name']}") for d in input),
            prefix=f"{CUSTOM}/{BOUNDARIES['name']}",
        log:
            f"{LOGS}/custom_boundaries.merge.log",
        threads: 1
        resources:
            **resources_of("infer"),
        shell:
            "hnet-genomics merge-tracks --shards {params.shards} --out {params.prefix:q} --threads {threads} --quiet "
            "> {log:q} 2>&1"
