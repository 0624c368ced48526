# A standard benchmark suite (`benchmark.suite`) through the fine-tuning protocol: one job per task, so a cluster
# runs the tasks side by side, and one job for the table beside the quoted published numbers. With
# `benchmark.data: null` each task is first downloaded by its own job (needs the network and the [benchmarks]
# extra); otherwise every task folder must already be in `benchmark.data`.


if BENCH_FETCH:

    rule fetch_benchmark_task:
        output:
            directory(f"{BENCH_DATA}/{{bench_task}}"),
        log:
            f"{LOGS}/benchmark_fetch.{{bench_task}}.log",
        threads: 1
        resources:
            **resources_of("light"),
        shell:
            "hnet-genomics benchmark-fetch --suite {BENCH_SUITE:q} --data {BENCH_DATA:q} "
            "--tasks {wildcards.bench_task} > {log:q} 2>&1"


rule benchmark_task:
    input:
        model=BENCH_MODEL,
        data=f"{BENCH_DATA}/{{bench_task}}",
    output:
        f"{BENCH_DIR}/{{bench_task}}/metrics.json",
    params:
        model=model_dir_flag(BENCH_MODEL),
        options=BENCH_OPTIONS,
    log:
        f"{LOGS}/benchmark.{{bench_task}}.log",
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    shell:
        "OMP_NUM_THREADS={threads} hnet-genomics benchmark --suite {BENCH_SUITE:q} --data {BENCH_DATA:q} "
        "--model {params.model:q} --out {BENCH_DIR:q} --tasks {wildcards.bench_task} {params.options} --no-table "
        "--threads {threads} --quiet > {log:q} 2>&1"


rule benchmark_table:
    input:
        expand(f"{BENCH_DIR}/{{bench_task}}/metrics.json", bench_task=BENCH_TASKS),
    output:
        [f"{BENCH_DIR}/benchmark.{ext}" for ext in ("md", "csv", "json", "png")],
    log:
        f"{LOGS}/benchmark_table.log",
    threads: 1
    resources:
        **resources_of("light"),
    shell:
        "hnet-genomics benchmark-table --suite {BENCH_SUITE:q} --runs {BENCH_DIR:q} > {log:q} 2>&1"
