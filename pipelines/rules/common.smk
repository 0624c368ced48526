# Resolve the pipeline config once, at parse time: every key, path and model config is checked before
# any job runs, so a typo stops the workflow with the key's name instead of failing hours into training.

import re
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError

from hnet_genomics.config import load_config
from hnet_genomics.errors import HNetError
from hnet_genomics.training.markov import MAX_ORDER

TOP_KEYS = ("genome", "hg38_source", "split_bed", "models", "main_model", "max_steps", "seq_len",
            "batch_size", "pretrain_set", "regions", "annotation", "markov_order", "finetune", "boundaries",
            "compare", "variants", "presets")
PRESET_KEYS = ("models", "main_model", "max_steps", "seq_len", "batch_size", "pretrain_set", "regions",
               "annotation", "resources")
RESOURCE_FAMILIES = ("light", "train", "infer")
RESOURCE_KEYS = ("threads", "gpu", "mem_mb", "runtime")
SPLIT_NAMES = ("train", "valid", "test")
PIPELINES_DIR = Path(workflow.basedir) / "pipelines"


def config_error(key, problem):
    return WorkflowError(f"pipeline config key '{key}': {problem}")


def _unset(value):
    # `--config key=` gives None and `--config key=null` gives the string "null"; both mean "use the preset".
    return value is None or value == "null"


def _section(mapping, keys, where):
    if not isinstance(mapping, dict):
        raise config_error(where, f"expected a mapping, got {mapping!r}")
    for key in keys:
        if key not in mapping:
            raise config_error(f"{where}.{key}" if where else key, "missing")
    unknown = sorted(set(mapping) - set(keys))
    if unknown:
        prefix = f"{where}." if where else ""
        raise config_error(f"{prefix}{unknown[0]}", f"unknown key (valid keys: {', '.join(keys)})")
    return mapping


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


def positive_int(value, key):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise config_error(key, f"expected a positive integer, got {value!r}")
    return value


_section(config, TOP_KEYS, "")

GENOME_SOURCE = config["genome"]
if GENOME_SOURCE in ("demo", "hg38"):
    GENOME_NAME = PRESET_NAME = GENOME_SOURCE
else:
    resolve_path(GENOME_SOURCE, "genome")
    GENOME_NAME = re.sub(r"[^A-Za-z0-9_.-]", "_", re.sub(r"\.(fa|fasta|fna)(\.gz)?$", "", Path(GENOME_SOURCE).name))
    PRESET_NAME = "custom"
if config["hg38_source"] not in ("ucsc", "basenji"):
    raise config_error("hg38_source", f"expected ucsc or basenji, got {config['hg38_source']!r}")

_presets = config["presets"]
if not isinstance(_presets, dict) or PRESET_NAME not in _presets:
    raise config_error(f"presets.{PRESET_NAME}", "missing")
PRESET = _section(_presets[PRESET_NAME], PRESET_KEYS, f"presets.{PRESET_NAME}")


def setting(key):
    """The top-level value when set, else the preset's."""
    return PRESET[key] if _unset(config[key]) else config[key]


_pretrain_set = setting("pretrain_set") or []
if not isinstance(_pretrain_set, list) or not all(isinstance(x, str) and "=" in x for x in _pretrain_set):
    raise config_error("pretrain_set", f"expected a list of section.key=value strings, got {_pretrain_set!r}")
MODELS = setting("models")
if not isinstance(MODELS, dict) or not MODELS:
    raise config_error("models", f"expected a mapping run name -> model config, got {MODELS!r}")
for _run, _model in MODELS.items():
    if not re.fullmatch(r"[A-Za-z0-9_-]+", str(_run)):
        raise config_error(f"models.{_run}", "run names may hold only letters, digits, '_' and '-'")
    if re.search(r"-seed\d+$", str(_run)):
        raise config_error(f"models.{_run}", "run names may not end in -seedN (that suffix names extra seeds)")
    try:
        load_config(_model, _pretrain_set)
    except HNetError as e:
        raise config_error(f"models.{_run}", str(e)) from None
MAIN = setting("main_model")
if MAIN not in MODELS:
    raise config_error("main_model", f"'{MAIN}' is not a run in models ({', '.join(MODELS)})")

BUDGET_FLAGS = " ".join(
    [f"--{key.replace('_', '-')} {positive_int(setting(key), key)}"
     for key in ("max_steps", "seq_len", "batch_size") if not _unset(setting(key))]
    + [f"--set {shlex.quote(item)}" for item in _pretrain_set]
)
REGION_NAMES = ("all", "hg38-loci", "demo-test-region")
REGIONS = resolve_path(setting("regions"), "regions", allow=REGION_NAMES)
ANNOTATION = resolve_path(setting("annotation"), "annotation", allow=("none", "demo-exons"))
MARKOV_ORDER = config["markov_order"]
if isinstance(MARKOV_ORDER, bool) or not isinstance(MARKOV_ORDER, int) or not 0 <= MARKOV_ORDER <= MAX_ORDER:
    raise config_error("markov_order", f"expected an integer from 0 to {MAX_ORDER}, got {MARKOV_ORDER!r}")

RESOURCES = _section(PRESET["resources"], RESOURCE_FAMILIES, f"presets.{PRESET_NAME}.resources")
for _family in RESOURCE_FAMILIES:
    _section(RESOURCES[_family], RESOURCE_KEYS, f"presets.{PRESET_NAME}.resources.{_family}")


def threads_of(family):
    return RESOURCES[family]["threads"]


def resources_of(family):
    """gpu, mem_mb (MB) and runtime (minutes): the names the SLURM executor and local scheduling read."""
    return {key: RESOURCES[family][key] for key in ("gpu", "mem_mb", "runtime")}


SPLIT_SOURCE = None  # BED with a split column, when the genome comes with one
if GENOME_SOURCE == "hg38" and config["hg38_source"] == "basenji":
    SPLIT_SOURCE = "basenji"
elif PRESET_NAME == "custom" and not _unset(config["split_bed"]):
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


FINETUNE = _section(config["finetune"], ("model", "epochs", "seeds", "lr", "pooling", "rc_tta", "kmer_baseline",
                                         "tasks"), "finetune")
FINETUNE_MODEL = model_input(FINETUNE["model"], "finetune.model")
positive_int(FINETUNE["epochs"], "finetune.epochs")
positive_int(FINETUNE["seeds"], "finetune.seeds")
if FINETUNE["pooling"] not in ("mean", "last", "chunk"):
    raise config_error("finetune.pooling", f"expected mean, last or chunk, got {FINETUNE['pooling']!r}")
for _flag in ("kmer_baseline", "rc_tta"):
    if not isinstance(FINETUNE[_flag], bool):
        raise config_error(f"finetune.{_flag}", f"expected true or false, got {FINETUNE[_flag]!r}")
if isinstance(FINETUNE["lr"], bool) or not isinstance(FINETUNE["lr"], (int, float)) or not FINETUNE["lr"] > 0:
    raise config_error("finetune.lr", f"expected a positive number, got {FINETUNE['lr']!r}")
if not isinstance(FINETUNE["tasks"], dict):
    raise config_error("finetune.tasks", "expected a mapping task name -> files")


DEMO_TASKS = {"demo-exon-starts": "exon-starts", "demo-species": "species"}  # built by `hnet-genomics make-task`
STRANDED_DEMO_TASKS = ("demo-exon-starts",)  # read in one orientation: no reverse-complement averaging


def _task_files(name, spec):
    """{train, test, stranded} of one task; stranded tasks are fine-tuned without --rc-tta."""
    key = f"finetune.tasks.{name}"
    if spec == "demo-tfbs":
        return {**{s: str(_demo_files()[f"demo-tfbs-{s}"]) for s in ("train", "test")}, "stranded": False}
    if spec in DEMO_TASKS:
        return {**{s: f"{R}/tasks/{spec}/{s}.csv.gz" for s in ("train", "test")},
                "stranded": spec in STRANDED_DEMO_TASKS}
    stranded = False
    if isinstance(spec, dict) and "stranded" in spec:
        stranded = spec["stranded"]
        if not isinstance(stranded, bool):
            raise config_error(f"{key}.stranded", f"expected true or false, got {stranded!r}")
        spec = {k: v for k, v in spec.items() if k != "stranded"}
    if isinstance(spec, dict) and set(spec) == {"benchmark"}:
        root = resolve_path(spec["benchmark"], f"{key}.benchmark")
        files = {s: resolve_path(str(Path(root) / s), f"{key}.benchmark") for s in ("train", "test")}
        return {**files, "stranded": stranded}
    if isinstance(spec, dict) and set(spec) == {"train", "test"}:
        return {**{s: resolve_path(spec[s], f"{key}.{s}") for s in ("train", "test")}, "stranded": stranded}
    raise config_error(key, f"expected demo-tfbs, {', '.join(DEMO_TASKS)}, {{train: PATH, test: PATH}} or "
                            "{benchmark: DIR} (either mapping may add stranded: true)")


TASKS = {name: _task_files(name, spec) for name, spec in FINETUNE["tasks"].items()}
for _task in TASKS:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", str(_task)):
        raise config_error(f"finetune.tasks.{_task}", "task names may hold only letters, digits, '_' and '-'")

COMPARE = _section(config["compare"], ("seeds", "reference"), "compare")
COMPARE_SEEDS = COMPARE["seeds"]
if (not isinstance(COMPARE_SEEDS, list) or not COMPARE_SEEDS or len(set(COMPARE_SEEDS)) != len(COMPARE_SEEDS)
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in COMPARE_SEEDS)):
    raise config_error("compare.seeds", f"expected a list of distinct non-negative integers, got {COMPARE_SEEDS!r}")
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


BOUNDARIES = _section(config["boundaries"], ("name", "model", "fasta", "regions", "shards"), "boundaries")
if not re.fullmatch(r"[A-Za-z0-9_-]+", str(BOUNDARIES["name"])):
    raise config_error("boundaries.name", "may hold only letters, digits, '_' and '-'")
BOUNDARIES_MODEL = model_input(BOUNDARIES["model"], "boundaries.model")
BOUNDARIES_FASTA = None if _unset(BOUNDARIES["fasta"]) else resolve_path(BOUNDARIES["fasta"], "boundaries.fasta")
BOUNDARIES_REGIONS = REGIONS if _unset(BOUNDARIES["regions"]) else resolve_path(
    BOUNDARIES["regions"], "boundaries.regions", allow=REGION_NAMES)
BOUNDARIES_SHARDS = BOUNDARIES["shards"]
if isinstance(BOUNDARIES_SHARDS, bool) or not isinstance(BOUNDARIES_SHARDS, int) or BOUNDARIES_SHARDS < 1:
    raise config_error("boundaries.shards", f"expected a positive integer, got {BOUNDARIES_SHARDS!r}")


VARIANTS = _section(config["variants"], ("model", "vcf", "strand", "regions", "shards"), "variants")
VARIANTS_MODEL = model_input(VARIANTS["model"], "variants.model")
VARIANTS_VCF, VARIANTS_VCF_PROBLEM = None, None  # no VCF: likelihood tracks only
if VARIANTS["vcf"] == "demo-variants" and GENOME_SOURCE != "demo":
    VARIANTS_VCF_PROBLEM = (f"demo-variants lies on the demo genome, not on {GENOME_NAME}; set variants.vcf to a "
                            f"VCF of {GENOME_NAME} (or to null for the likelihood tracks alone)")
elif not _unset(VARIANTS["vcf"]):
    VARIANTS_VCF = resolve_path(VARIANTS["vcf"], "variants.vcf", allow=("demo-variants",))
if VARIANTS["strand"] not in ("both", "fwd"):
    raise config_error("variants.strand", f"expected both or fwd, got {VARIANTS['strand']!r}")
VARIANTS_REGIONS = REGIONS if _unset(VARIANTS["regions"]) else resolve_path(
    VARIANTS["regions"], "variants.regions", allow=REGION_NAMES)
VARIANTS_SHARDS = positive_int(VARIANTS["shards"], "variants.shards")
VARIANTS_OUT = f"{R}/variants/scores.vcf.gz"  # + .tbi and scores.tsv
LIKELIHOOD_DIR = f"{R}/likelihood"


wildcard_constraints:
    run="(" + "|".join(re.escape(r) for r in MODELS) + r")(-seed[1-9]\d*)?",
    split="|".join(SPLIT_NAMES),
    order=r"\d+",
    shard=r"[1-9]\d*",
    task="|".join(re.escape(t) for t in TASKS) or "^$",

