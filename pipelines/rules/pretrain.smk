# Pretrain every configured run on the same intervals and budget; score runs and the Markov reference.


rule pretrain:
    input:
        fasta=GENOME_FASTA,
        index=GENOME_INDEX,
        splits=SPLITS_BED,
    output:
        directory(f"{R}/pretrain/{{run}}"),
    params:
        config=lambda wc: MODELS[run_seed(wc.run)[0]],
        budget=BUDGET_FLAGS,
        seed=lambda wc: f"--set train.seed={run_seed(wc.run)[1]}" if run_seed(wc.run)[1] else "",
    log:
        f"{LOGS}/pretrain.{{run}}.log",
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    shell:
        "OMP_NUM_THREADS={threads} hnet-genomics pretrain --config {params.config:q} --fasta {input.fasta:q} "
        "--intervals {input.splits:q} --out {output:q} {params.budget} {params.seed} --quiet > {log:q} 2>&1"


rule evaluate:
    input:
        run=f"{R}/pretrain/{{run}}",
        fasta=GENOME_FASTA,
        index=GENOME_INDEX,
        splits=SPLITS_BED,
    output:
        f"{R}/eval/{{run}}.{{split}}.json",
    log:
        f"{LOGS}/evaluate.{{run}}.{{split}}.log",
    threads: threads_of("infer")
    resources:
        **resources_of("infer"),
    shell:
        "OMP_NUM_THREADS={threads} hnet-genomics eval --model {input.run:q}/model --fasta {input.fasta:q} "
        "--intervals {input.splits:q} --split {wildcards.split} --out {output:q} --quiet > {log:q} 2>&1"


rule markov_reference:
    input:
        fasta=GENOME_FASTA,
        index=GENOME_INDEX,
        splits=SPLITS_BED,
    output:
        f"{R}/eval/markov/order{{order}}.{{split}}.json",
    log:
        f"{LOGS}/markov.order{{order}}.{{split}}.log",
    threads: 1
    resources:
        **resources_of("light"),
    shell:
        "hnet-genomics eval --baseline markov --order {wildcards.order} --fasta {input.fasta:q} "
        "--intervals {input.splits:q} --split {wildcards.split} --out {output:q} > {log:q} 2>&1"
