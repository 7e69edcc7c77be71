"""Where the Hydra configs and the demo data live, the config resolvers, and the config schemas.

Layout. The configs and the demo data are kept in the project's top-level `configs/` and `data/`
folders; a wheel or a plain install puts them inside the package, as `seqmodel/configs` and
`seqmodel/demo_data` (see setup.py). The installed copy is used when it is there, else the
source checkout's folders (an editable install, or running from the repository).

Schemas. The dataclasses below are registered in Hydra's ConfigStore as `train_schema`,
`predict_schema` and `evaluate_schema`, the first entry of the defaults list of
`configs/train.yaml`, `configs/predict.yaml` and `configs/evaluate.yaml`. Every option of a group
is merged into its group's schema, so every option accepts every key of the group, a key that
the schema does not know is refused with its name, and values are checked against the type.
The values themselves live in the YAML files: a schema gives a default only where an option may
leave a key out (the data options share every key but `fasta`); `trainer`, `logger` and
`callbacks` stay open (any `lightning.Trainer` argument, any logger or callback).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent


def _installed_or_source(installed: str, source: str) -> Path:
    """The folder installed inside the package, else the source checkout's top-level folder."""
    path = PACKAGE_DIR / installed
    return path if path.is_dir() else PACKAGE_DIR.parent / source


CONFIG_DIR = _installed_or_source("configs", "configs")
DEMO_DATA_DIR = _installed_or_source("demo_data", "data")
SOURCE_CHECKOUT = DEMO_DATA_DIR == PACKAGE_DIR.parent / "data"


def prepared_data_dir() -> Path:
    """Where scripts/prepare_results_data.sh writes the data sets of docs/results.md:
    `data/prepared` of the source checkout, or of the working directory for an installed package."""
    return DEMO_DATA_DIR / "prepared" if SOURCE_CHECKOUT else Path.cwd() / "data" / "prepared"


def register_resolvers() -> None:
    """`${seqmodel_data:name}`: the absolute path of a demo data file (`data/` of the project);
    `${seqmodel_prepared:name}`: the absolute path of a file under `prepared_data_dir()`."""
    if not OmegaConf.has_resolver("seqmodel_data"):
        OmegaConf.register_new_resolver("seqmodel_data", lambda name: str(DEMO_DATA_DIR / name))
    if not OmegaConf.has_resolver("seqmodel_prepared"):
        OmegaConf.register_new_resolver("seqmodel_prepared", lambda name: str(prepared_data_dir() / name))


# --- schemas -------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """`data=`: the keyword arguments of SeqDataModule that describe the data (its defaults)."""

    fasta: str = MISSING
    mutations: str | None = None
    true_rate: str | None = None
    labels: str | None = None
    window: int = 200
    stride: int | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0
    split_from_headers: bool = False
    genomes: int | None = None
    rc_augment: bool = True
    token_cache: str | None = None
    cache_dir: str | None = None  # a folder keeping the byte ranges read from URL inputs (null: off)


@dataclass
class LoaderConfig:
    """`loader=`: batch size and the M:N runtime that makes the batches."""

    batch_size: int = MISSING
    cpu_workers: int | None = None
    io_workers: int = MISSING
    prefetch: int = MISSING
    pin_cores: bool = False
    trace: str | None = None
    summary: bool = False


@dataclass
class TrunkConfig:
    cell: str = MISSING
    conv_channels: int = MISSING
    conv_kernel: int = MISSING
    conv_layers: int = MISSING
    hidden_size: int = MISSING
    num_layers: int = MISSING
    dropout: float = MISSING


@dataclass
class PerBaseHeadConfig:
    hidden: int = MISSING
    context: int = 0


@dataclass
class PooledHeadConfig:
    hidden: int = MISSING
    pooling: str = MISSING
    trunk_grad_scale: float = 1.0


@dataclass
class LossConfig:
    base: str = "binomial"
    w_base: float = MISSING
    w_seq: float = MISSING
    pos_weight: float = 1.0
    grad_cosine_every: int = 0


@dataclass
class OptimConfig:
    lr: float = MISSING
    weight_decay: float = MISSING
    warmup_steps: int = 0


@dataclass
class ModelConfig:
    """`model=`: the network (trunk and heads), the loss weights and the optimiser."""

    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    per_base_head: PerBaseHeadConfig = field(default_factory=PerBaseHeadConfig)
    pooled_head: PooledHeadConfig = field(default_factory=PooledHeadConfig)
    compile: bool = False
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class CudaConfig:
    matmul_precision: str = MISSING
    cudnn_benchmark: bool = MISSING


@dataclass
class TrainConfig:
    """`seqmodel-train` (configs/train.yaml)."""

    task_name: str = MISSING
    seed: int = MISSING
    ckpt_path: str | None = None
    test: bool = MISSING
    cuda: CudaConfig = field(default_factory=CudaConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    trainer: dict[str, Any] = field(default_factory=dict)
    logger: dict[str, Any] = field(default_factory=dict)
    callbacks: dict[str, Any] = field(default_factory=dict)


@dataclass
class PredictSettings:
    """`predict=` (the `predict:` block of seqmodel-predict and seqmodel-evaluate)."""

    batch_size: int = MISSING
    overlap: int | None = None
    rc_average: bool = MISSING
    bigwig_zooms: int = 0
    sequence_window: int | None = None
    device: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    io_workers: int = 1
    cpu_workers: int = 1


@dataclass
class PredictConfig:
    """`seqmodel-predict` (configs/predict.yaml)."""

    ckpt_path: str = MISSING
    input: str = MISSING
    output: str = MISSING
    regions: str | None = None
    predict: PredictSettings = field(default_factory=PredictSettings)


@dataclass
class BaselinesConfig:
    kmer_sizes: list[int] = MISSING
    prior_strength: float = MISSING
    prior_strength_grid: list[float] = field(default_factory=list)
    pwm_motifs: str | None = None
    pwm_motif_id: str | None = None
    pwm_hit_threshold: str | None = None  # a log2-odds score ("12") or a share of the score range ("85%")


@dataclass
class EvaluateMetricsConfig:
    kmer_min_count: int = MISSING
    regional_window: int = MISSING
    regional_min_bases: int = MISSING
    regional_windows: list[int] = field(default_factory=list)
    calibration_bins: int = MISSING
    bootstrap_block: int = MISSING
    bootstrap_replicates: int = MISSING
    bootstrap_seed: int = 0


@dataclass
class EvaluateConfig:
    """`seqmodel-evaluate` (configs/evaluate.yaml)."""

    ckpt_path: str = MISSING
    held_out: str | None = None
    hits: str | None = None
    real_mutations: str | None = None
    output: str | None = None
    calibration_plot: str | None = None
    task_name: str = "evaluate"
    logger: dict[str, Any] = field(default_factory=dict)  # the `logger` group; only wandb is used
    data: DataConfig = field(default_factory=DataConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    metrics: EvaluateMetricsConfig = field(default_factory=EvaluateMetricsConfig)
    predict: PredictSettings = field(default_factory=PredictSettings)


@dataclass
class ExplainSettings:
    """The `explain:` block of configs/explain.yaml."""

    method: str = MISSING
    target: str | None = None
    window: list[int] | None = None
    batch_size: int = MISSING
    steps: int = MISSING
    max_bases: int = MISSING
    plot_bases: int = MISSING


@dataclass
class ExplainConfig:
    """`seqmodel-explain` (configs/explain.yaml)."""

    ckpt_path: str = MISSING
    input: str = MISSING
    output: str = MISSING
    regions: str | None = None
    head: str = MISSING
    plot: str | None = None
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    predict: PredictSettings = field(default_factory=PredictSettings)


@dataclass
class ScoreSettings:
    """The `score:` block of configs/score_variants.yaml."""

    window: int = MISSING
    batch_size: int = MISSING
    max_ref_mismatch: float = MISSING
    sort_buffer: int = MISSING
    keep_filtered: bool = False


@dataclass
class ScoreVariantsConfig:
    """`seqmodel-score-variants` (configs/score_variants.yaml)."""

    ckpt_path: str = MISSING
    vcf: str = MISSING
    genome: str = MISSING
    output: str = MISSING
    score: ScoreSettings = field(default_factory=ScoreSettings)
    predict: PredictSettings = field(default_factory=PredictSettings)


SCHEMAS = {
    "train_schema": TrainConfig,
    "predict_schema": PredictConfig,
    "evaluate_schema": EvaluateConfig,
    "explain_schema": ExplainConfig,
    "score_variants_schema": ScoreVariantsConfig,
}


def store_schemas() -> None:
    """Register the schemas in Hydra's ConfigStore (the configs' defaults lists name them)."""
    store = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        store.store(name=name, node=node)


# Whoever composes the configs (the CLIs, the tests, scripts) imports this module first.
register_resolvers()
store_schemas()
