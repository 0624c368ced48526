# The run report of the main model and the same-budget comparison of every configured run.


rule report:
    input:
        run=f"{R}/pretrain/{MAIN}",
        evaluation=f"{R}/eval/{MAIN}.test.json",
        markov=f"{R}/eval/markov/order{MARKOV_ORDER}.test.json",
        tracks=f"{R}/tracks/{MAIN}",
        enrichment=[f"{R}/enrichment/{MAIN}"] if ANNOTATION else [],
    output:
        directory(f"{R}/report"),
    params:
        tracks=f"{R}/tracks/{MAIN}/{MAIN}",
        enrichment=lambda wc, input: f"--enrichment {shlex.quote(input.enrichment[0])}" if input.enrichment else "",
    log:
        f"{LOGS}/report.log",
    threads: 1
    resources:
        **resources_of("light"),
    shell:
        "hnet-genomics report --out {output:q}/report.md --pretrain {input.run:q} --eval {input.evaluation:q} "
        "--markov {input.markov:q} --tracks {params.tracks:q} {params.enrichment} > {log:q} 2>&1"


rule compare:
    input:
        runs=[f"{R}/pretrain/{seeded_run(run, seed)}" for run in MODELS for seed in COMPARE_SEEDS],
        tests=[f"{R}/eval/{seeded_run(run, seed)}.test.json" for run in MODELS for seed in COMPARE_SEEDS],
        markov=f"{R}/eval/markov/order{MARKOV_ORDER}.valid.json",
    output:
        directory(f"{R}/compare"),
    params:
        runs=" ".join(shlex.quote(f"{run}={R}/pretrain/{seeded_run(run, seed)}") for run in MODELS
                      for seed in COMPARE_SEEDS),
        tests=" ".join(shlex.quote(f"{run}={R}/eval/{seeded_run(run, seed)}.test.json") for run in MODELS
                       for seed in COMPARE_SEEDS),
    log:
        f"{LOGS}/compare.log",
    threads: 1
    resources:
        **resources_of("light"),
    shell:
        "hnet-genomics compare --runs {params.runs} --test {params.tests} --reference {COMPARE_REFERENCE} "
        "--markov {input.markov:q} --out {output:q} > {log:q} 2>&1"
