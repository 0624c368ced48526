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
        rc_tta="--rc-tta" if FINETUNE["rc_tta"] else "",
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
