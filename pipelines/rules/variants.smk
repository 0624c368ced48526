# Zero-shot variant scores for a VCF, and per-base likelihood (bits) tracks, with any saved model.


rule score_variants:
    input:
        model=VARIANTS_MODEL,
        fasta=GENOME_FASTA,
        index=GENOME_INDEX,
        vcf=[VARIANTS_VCF] if VARIANTS_VCF else [],
    output:
        vcf=VARIANTS_OUT,
        tbi=f"{VARIANTS_OUT}.tbi",
        tsv=f"{R}/variants/scores.tsv",
    params:
        model=model_dir_flag(VARIANTS_MODEL),
        strand=VARIANTS["strand"],
    log:
        f"{LOGS}/score_variants.log",
    threads: threads_of("infer")
    resources:
        **resources_of("infer"),
    shell:
        "OMP_NUM_THREADS={threads} hnet-genomics score-variants --model {params.model} --fasta {input.fasta} "
        "--vcf {input.vcf} --out {output.vcf} --strand {params.strand} --threads {threads} > {log} 2>&1"


LIKELIHOOD = (
    "mkdir -p {output} && OMP_NUM_THREADS={threads} hnet-genomics likelihood --model {params.model} "
    "--fasta {input.fasta} {params.regions} --out {params.prefix} --strand {params.strand} --threads {threads}"
)
LIKELIHOOD_INPUT = dict(model=VARIANTS_MODEL, fasta=GENOME_FASTA, index=GENOME_INDEX,
                        regions=[VARIANTS_REGIONS] if VARIANTS_REGIONS else [])


if VARIANTS_SHARDS == 1:

    rule likelihood_tracks:
        input:
            **LIKELIHOOD_INPUT,
        output:
            directory(LIKELIHOOD_DIR),
        params:
            model=model_dir_flag(VARIANTS_MODEL),
            prefix=f"{LIKELIHOOD_DIR}/{GENOME_NAME}",
            regions=regions_flag(VARIANTS_REGIONS),
            strand=VARIANTS["strand"],
        log:
            f"{LOGS}/likelihood_tracks.log",
        threads: threads_of("infer")
        resources:
            **resources_of("infer"),
        shell:
            LIKELIHOOD + " > {log} 2>&1"

else:

    rule likelihood_shard:
        input:
            **LIKELIHOOD_INPUT,
        output:
            temp(directory(f"{LIKELIHOOD_DIR}.shards/{{shard}}")),
        params:
            model=model_dir_flag(VARIANTS_MODEL),
            prefix=lambda wc: f"{LIKELIHOOD_DIR}.shards/{wc.shard}/{GENOME_NAME}",
            regions=regions_flag(VARIANTS_REGIONS),
            strand=VARIANTS["strand"],
            shard=lambda wc: f"{wc.shard}/{VARIANTS_SHARDS}",
        log:
            f"{LOGS}/likelihood_tracks.shard{{shard}}.log",
        threads: threads_of("infer")
        resources:
            **resources_of("infer"),
        shell:
            LIKELIHOOD + " --shard {params.shard} --formats bedgraph > {log} 2>&1"

    rule likelihood_tracks:
        input:
            expand(f"{LIKELIHOOD_DIR}.shards/{{shard}}", shard=range(1, VARIANTS_SHARDS + 1)),
        output:
            directory(LIKELIHOOD_DIR),
        params:
            shards=lambda wc, input: " ".join(f"{d}/{GENOME_NAME}" for d in input),
            prefix=f"{LIKELIHOOD_DIR}/{GENOME_NAME}",
        log:
            f"{LOGS}/likelihood_tracks.merge.log",
        threads: 1
        resources:
            **resources_of("infer"),
        shell:
            "mkdir -p {output} && hnet-genomics merge-tracks --shards {params.shards} --out {params.prefix} "
            "--formats bedgraph,bigwig > {log} 2>&1"
