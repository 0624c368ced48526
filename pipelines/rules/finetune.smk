# Fine-tune the configured model on each task (CSV / FASTA / Genomic Benchmarks layout).


rule finetune_task:
    input:
        model=FINETUNE_MODEL,
        train=lambda wc: TASKS[wc.task]["train"],
        test=lambda wc: TASKS[wc.task]["test"],
    output:
        directory(f"{R}/finetune/{{task}}"),
    params:
        model=model_dir_flag(FINETUNE_MODEL),
        epochs=FINETUNE["epochs"],
        seeds=FINETUNE["seeds"],
        lr=FINETUNE["lr"],
        pooling=FINETUNE["pooling"],
        rc_tta=lambda wc: "--rc-tta" if FINETUNE["rc_tta"] and not TASKS[wc.task]["stranded"] else "",
        baseline="--baseline kmer" if FINETUNE["kmer_baseline"] else "",
    log:
        f"{LOGS}/finetune.{{task}}.log",
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    shell:
        "OMP_NUM_THREADS={threads} hnet-genomics finetune --model {params.model:q} --train {input.train:q} "
        "--test {input.test:q} --out {output:q} --epochs {params.epochs} --seeds {params.seeds} --lr {params.lr} "
        "--pooling {params.pooling} {params.rc_tta} {params.baseline} --threads {threads} --quiet > {log:q} 2>&1"


rule make_demo_task:
    output:
        train=f"{R}/tasks/demo-{{kind}}/train.csv.gz",
        test=f"{R}/tasks/demo-{{kind}}/test.csv.gz",
        info=f"{R}/tasks/demo-{{kind}}/task.json",
    wildcard_constraints:
        kind="|".join(re.escape(k) for k in DEMO_TASKS.values()),
    log:
        f"{LOGS}/make_task.{{kind}}.log",
    threads: 1
    resources:
        **resources_of("light"),
    shell:
        "hnet-genomics make-task {wildcards.kind} --out {R:q}/tasks/demo-{wildcards.kind} > {log:q} 2>&1"
