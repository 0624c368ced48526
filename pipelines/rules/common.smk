# Resolve the pipeline config once, at parse time: every key, path and model config is checked before
# any job runs, so a typo stops the workflow with the key's name instead of failing hours into training.
# Keys, types and ranges: pipelines/config.schema.yaml through Snakemake's validate(); below, only what a schema
# cannot say (files exist, model configs load, runs named in one place exist in another).

import re
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from hnet_genomics.config import load_config
from hnet_genomics.errors import HNetError

SPLIT_NAMES = ("train", "valid", "test")
PIPELINES_DIR = Path(workflow.basedir) / "pipelines"


def config_error(key, problem):
    return WorkflowError(f"pipeline config key '{key}': {problem}")


def _nulls(value):
    """`--config key=null` gives the string "null" (and `key=` None): both mean "take the preset's value"."""
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    return None if value == "null" else value


def validate_config(data, schema):
    """Snakemake's schema check, its first violation as one line naming the key."""
    try:
        validate(data, schema, set_default=False)
    except WorkflowError as e:
        cause = e.__cause__ or e.__context__  # the jsonschema ValidationError validate() caught
        if not hasattr(cause, "absolute_path"):
            raise
        where = [str(p) for p in cause.absolute_path]
        message = cause.message
        if cause.validator == "additionalProperties" and isinstance(cause.instance, dict):
            known = cause.schema.get("properties", {})
            where.append(sorted(set(cause.instance) - set(known))[0])
            message = f"unknown key (valid keys: {', '.join(known)})"
        elif cause.validator == "required":
            where.append(next(k for k in cause.validator_value if k not in cause.instance))
            message = "missing"
        raise config_error(".".join(where), message) from None


def _demo_files():
    from hnet_genomics.data import demo

    return {"demo-exons": demo.HUMAN_EXONS_BED, "demo-tfbs-train": demo.TFBS_TRAIN, "demo-tfbs-test": demo.TFBS_TEST}


def resolve_path(value, key, allow=()):
    """A user path (must exist) or one of the built-in names in ``allow``; returns a string or None."""
    if value in allow:
        if value in ("all", "none"):
            return None
        if value in ("hg38-loci", "demo-test-region"):
            return str(PIPELINES_DIR / "regions" / f"{value.replace('-', '_')}.bed")
        if value == "demo-variants":
            return str(PIPELINES_DIR / "variants" / "hla_simulated.vcf")
        return str(_demo_files()[value])
    if not isinstance(value, str) or not value:
        names = f" or one of {', '.join(allow)}" if allow else ""
        raise config_error(key, f"expected a path{names}, got {value!r}")
    if not Path(value).exists():
        raise config_error(key, f"no such file or directory: {value}")
    return value


config.update(_nulls(dict(config)))
validate_config(config, str(PIPELINES_DIR / "config.schema.yaml"))

GENOME_SOURCE = config["genome"]
if GENOME_SOURCE in ("demo", "hg38"):
    GENOME_NAME = PRESET_NAME = GENOME_SOURCE
else:
    resolve_path(GENOME_SOURCE, "genome")
    GENOME_NAME = re.sub(r"[^A-Za-z0-9_.-]", "_", re.sub(r"\.(fa|fasta|fna)(\.gz)?$", "", Path(GENOME_SOURCE).name))
    PRESET_NAME = "custom"
PRESET = config["presets"][PRESET_NAME]


def setting(key):
    """The top-level value when set, else the preset's."""
    return PRESET[key] if config[key] is None else config[key]


_pretrain_set = setting("pretrain_set") or []
MODELS = setting("models")
for _run, _model in MODELS.items():
    try:
        load_config(_model, _pretrain_set)
    except HNetError as e:
        raise config_error(f"models.{_run}", str(e)) from None
MAIN = setting("main_model")
if MAIN not in MODELS:
    raise config_error("main_model", f"'{MAIN}' is not a run in models ({', '.join(MODELS)})")

BUDGET_FLAGS = " ".join(
    [f"--{key.replace('_', '-')} {setting(key)}" for key in ("max_steps", "seq_len", "batch_size")
     if setting(key) is not None]
    + [f"--set {shlex.quote(item)}" for item in _pretrain_set]
)
REGION_NAMES = ("all", "hg38-loci", "demo-test-region")
REGIONS = resolve_path(setting("regions"), "regions", allow=REGION_NAMES)
ANNOTATION = resolve_path(setting("annotation"), "annotation", allow=("none", "demo-exons"))
MARKOV_ORDER = config["markov_order"]
RESOURCES = PRESET["resources"]


def threads_of(family):
    return RESOURCES[family]["threads"]


def resources_of(family):
    """gpu, mem_mb (MB) and runtime (minutes): the names the SLURM executor and local scheduling read."""
    return {key: RESOURCES[family][key] for key in ("gpu", "mem_mb", "runtime")}


SPLIT_SOURCE = None  # BED with a split column, when the genome comes with one
if GENOME_SOURCE == "hg38" and config["hg38_source"] == "basenji":
    SPLIT_SOURCE = "basenji"
elif PRESET_NAME == "custom" and config["split_bed"] is not None:
    SPLIT_SOURCE = resolve_path(config["split_bed"], "split_bed")

R = f"results/{GENOME_NAME}"
GENOME_FASTA = f"{R}/genome/{'hg38' if GENOME_SOURCE == 'hg38' else 'genome'}.fa.gz"
GENOME_INDEX = [f"{GENOME_FASTA}.fai", f"{GENOME_FASTA}.gzi"]
SPLITS_BED = f"{R}/splits.bed"
LOGS = f"{R}/logs"


def regions_flag(regions):
    return f"--regions {shlex.quote(regions)}" if regions else ""


def model_input(value, key):
    """A run name -> its pretrain directory (a job input); anything else must be a saved model directory."""
    if value == "main":
        value = MAIN
    if value in MODELS:
        return f"{R}/pretrain/{value}"
    return resolve_path(value, key)


def model_dir_flag(value):
    """The directory `hnet-genomics` loads: runs keep their weights in <run>/model."""
    return f"{value}/model" if value.startswith(f"{R}/pretrain/") else value


FINETUNE = config["finetune"]
FINETUNE_MODEL = model_input(FINETUNE["model"], "finetune.model")


DEMO_TASKS = {"demo-exon-starts": "exon-starts", "demo-species": "species"}  # built by `hnet-genomics make-task`
STRANDED_DEMO_TASKS = ("demo-exon-starts",)  # read in one orientation: no reverse-complement averaging


def _task_files(name, spec):
    """{train, test, stranded} of one task (the schema fixed its shape); stranded tasks skip --rc-tta."""
    key = f"finetune.tasks.{name}"
    if spec == "demo-tfbs":
        return {**{s: str(_demo_files()[f"demo-tfbs-{s}"]) for s in ("train", "test")}, "stranded": False}
    if isinstance(spec, str) and spec in DEMO_TASKS:  # the other forms are mappings (unhashable)
        return {**{s: f"{R}/tasks/{spec}/{s}.csv.gz" for s in ("train", "test")},
                "stranded": spec in STRANDED_DEMO_TASKS}
    stranded = spec.get("stranded", False)
    if "benchmark" in spec:
        root = resolve_path(spec["benchmark"], f"{key}.benchmark")
        files = {s: resolve_path(str(Path(root) / s), f"{key}.benchmark") for s in ("train", "test")}
        return {**files, "stranded": stranded}
    return {**{s: resolve_path(spec[s], f"{key}.{s}") for s in ("train", "test")}, "stranded": stranded}


TASKS = {name: _task_files(name, spec) for name, spec in FINETUNE["tasks"].items()}

COMPARE = config["compare"]
COMPARE_SEEDS = COMPARE["seeds"]
COMPARE_REFERENCE = MAIN if COMPARE["reference"] == "main" else COMPARE["reference"]
if COMPARE_REFERENCE not in MODELS:
    raise config_error("compare.reference", f"'{COMPARE_REFERENCE}' is not a run in models ({', '.join(MODELS)})")


def seeded_run(run, seed):
    """Seed 0 (the trainer's default) is the plain run, so the main job's run is reused by the comparison."""
    return run if seed == 0 else f"{run}-seed{seed}"


def run_seed(seeded):
    """'hnet_1stage-seed2' -> ('hnet_1stage', 2); 'hnet_1stage' -> ('hnet_1stage', 0)."""
    match = re.fullmatch(r"(.+)-seed(\d+)", seeded)
    return (match[1], int(match[2])) if match else (seeded, 0)


BOUNDARIES = config["boundaries"]
BOUNDARIES_MODEL = model_input(BOUNDARIES["model"], "boundaries.model")
BOUNDARIES_FASTA = None if BOUNDARIES["fasta"] is None else resolve_path(BOUNDARIES["fasta"], "boundaries.fasta")
BOUNDARIES_REGIONS = REGIONS if BOUNDARIES["regions"] is None else resolve_path(
    BOUNDARIES["regions"], "boundaries.regions", allow=REGION_NAMES)
BOUNDARIES_SHARDS = BOUNDARIES["shards"]


VARIANTS = config["variants"]
VARIANTS_MODEL = model_input(VARIANTS["model"], "variants.model")
VARIANTS_VCF, VARIANTS_VCF_PROBLEM = None, None  # no VCF: likelihood tracks only
if VARIANTS["vcf"] == "demo-variants" and GENOME_SOURCE != "demo":
    VARIANTS_VCF_PROBLEM = (f"demo-variants lies on the demo genome, not on {GENOME_NAME}; set variants.vcf to a "
                            f"VCF of {GENOME_NAME} (or to null for the likelihood tracks alone)")
elif VARIANTS["vcf"] is not None:
    VARIANTS_VCF = resolve_path(VARIANTS["vcf"], "variants.vcf", allow=("demo-variants",))
VARIANTS_REGIONS = REGIONS if VARIANTS["regions"] is None else resolve_path(
    VARIANTS["regions"], "variants.regions", allow=REGION_NAMES)
VARIANTS_SHARDS = VARIANTS["shards"]
VARIANTS_OUT = f"{R}/variants/scores.vcf.gz"  # + .tbi and scores.tsv
LIKELIHOOD_DIR = f"{R}/likelihood"


BENCH = config["benchmark"]
BENCH_SUITE = BENCH["suite"]  # a shipped suite's name or the path of a suite registry YAML
try:
    from hnet_genomics.tasks.suites import load_suite

    _suite = load_suite(BENCH_SUITE)
except HNetError as e:
    raise config_error("benchmark.suite", str(e).removeprefix("--suite: ")) from None
try:
    BENCH_TASKS = [t.name for t in _suite.select(BENCH["tasks"])]
except HNetError as e:
    raise config_error("benchmark.tasks", str(e).removeprefix("--tasks: ")) from None
BENCH_DIR = f"{R}/benchmark/{_suite.name}"
BENCH_FETCH = BENCH["data"] is None  # null: each task is downloaded into results/<genome>/benchmark/data/<suite>
BENCH_DATA = f"{R}/benchmark/data/{BENCH_SUITE}" if BENCH_FETCH else resolve_path(BENCH["data"], "benchmark.data")
if not BENCH_FETCH:
    for _task in BENCH_TASKS:
        resolve_path(str(Path(BENCH_DATA) / _task), "benchmark.data")
BENCH_MODEL = model_input(BENCH["model"], "benchmark.model")
BENCH_OPTIONS = " ".join(
    [f"--seeds {BENCH['seeds']} --epochs {BENCH['epochs']} --lr {BENCH['lr']} --batch-size {BENCH['batch_size']}"]
    + ([f"--max-train {BENCH['max_train']}"] if BENCH["max_train"] is not None else [])
    + (["--rc-tta"] if BENCH["rc_tta"] else [])
    + ([] if BENCH["kmer_baseline"] else ["--no-kmer"])
)


wildcard_constraints:
    run="(" + "|".join(re.escape(r) for r in MODELS) + r")(-seed[1-9]\d*)?",
    split="|".join(SPLIT_NAMES),
    order=r"\d+",
    shard=r"[1-9]\d*",
    task="|".join(re.escape(t) for t in TASKS) or "^$",
    bench_task="|".join(re.escape(t) for t in BENCH_TASKS),

