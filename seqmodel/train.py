"""`seqmodel-train`: the training recipe, read top to bottom, driven by Hydra configs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from seqmodel.config import CONFIG_DIR, register_resolvers
from seqmodel.errors import SeqmodelInputError, run_cli

log = logging.getLogger(__name__)

# The key of `train`'s metrics that holds the checkpoint callback's best monitored score
# (`callbacks.checkpoint.monitor` at checkpoints/best.ckpt): what `seqmodel-train` returns to a sweeper.
BEST_SCORE = "best_score"

# The config key behind each library parameter that can be refused (see errors.ParameterError).
CONFIG_KEYS = {
    "cell": "model.trunk.cell",
    "pooling": "model.pooled_head.pooling",
    "trunk_grad_scale": "model.pooled_head.trunk_grad_scale",
    "base_loss": "model.loss.base",
    "val_fraction": "data.val_fraction",
}


def offline_first() -> None:
    """wandb never waits for a login or a server unless the user opted in with WANDB_MODE."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")


# Where wandb stages artifact files (a logged checkpoint, tables) until `wandb sync` uploads them:
# the user's WANDB_DATA_DIR when set, else the run directory's wandb/ folder (see `wandb_data_dir`).
_USER_WANDB_DATA_DIR = os.environ.get("WANDB_DATA_DIR")


def wandb_data_dir(run_dir: Path) -> None:
    """Keep an offline run and the files its artifacts point to together in `run_dir/wandb`
    (wandb's default is a folder in the home directory), unless the user set WANDB_DATA_DIR."""
    os.environ["WANDB_DATA_DIR"] = _USER_WANDB_DATA_DIR or str(run_dir / "wandb")


def previous_wandb_run(run_dir: Path) -> str | None:
    """The id of the latest wandb run in `run_dir` (`wandb/<offline->run-<date>-<id>`), if any."""
    runs = sorted((run_dir / "wandb").glob("*run-*-*"), key=lambda p: p.stat().st_mtime)
    return runs[-1].name.rsplit("-", 1)[-1] if runs else None


def resolve_ckpt_path(ckpt_path: str | None, run_dir: Path) -> str | None:
    """`last` means this run directory's `checkpoints/last.ckpt`; anything else must exist."""
    if ckpt_path is None:
        return None
    path = run_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.is_file():
        raise SeqmodelInputError(path, None, "checkpoint to resume from not found")
    return str(path)


def configure_cuda(cuda_cfg: DictConfig) -> None:
    """Deliberate torch.backends settings for GPU runs (no effect on CPU)."""
    import torch

    if torch.cuda.is_available():
        torch.set_float32_matmul_precision(cuda_cfg.matmul_precision)
        torch.backends.cudnn.benchmark = bool(cuda_cfg.cudnn_benchmark)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit (and test) the model described by `cfg`; returns the final metrics, and under
    BEST_SCORE the checkpoint callback's best monitored value when there is one."""
    import lightning as L

    from seqmodel.data.datamodule import SeqDataModule
    from seqmodel.models.callbacks import LastCheckpoint
    from seqmodel.models.checkpoint import CHECKPOINT_FORMAT
    from seqmodel.models.module import SeqLightningModule

    offline_first()
    run_dir = Path(HydraConfig.get().runtime.output_dir)

    datamodule = SeqDataModule(**cfg.data, **cfg.loader, seed=cfg.seed)
    datamodule.setup()
    L.seed_everything(cfg.seed, workers=True)
    configure_cuda(cfg.cuda)
    module = SeqLightningModule(
        model={
            k: OmegaConf.to_container(cfg.model[k], resolve=True)
            for k in ("trunk", "per_base_head", "pooled_head")
        },
        num_classes=datamodule.num_classes,
        data_info={**datamodule.data_info, "format": CHECKPOINT_FORMAT},
        loss=OmegaConf.to_container(cfg.model.loss, resolve=True),
        optim=OmegaConf.to_container(cfg.model.optim, resolve=True),
        compile=cfg.model.compile,
        mean_rate=datamodule.splits["train"].mean_rate(),
    )
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    logger_cfgs = cfg.get("logger") or {}
    if "wandb" in logger_cfgs:
        wandb_data_dir(run_dir)
        if logger_cfgs.wandb.get("name") is None:
            with open_dict(logger_cfgs.wandb):
                logger_cfgs.wandb.name = f"{cfg.task_name}-seed{cfg.seed}"
    if cfg.ckpt_path and "wandb" in logger_cfgs and (run_id := previous_wandb_run(run_dir)):
        logger_cfgs.wandb.id, logger_cfgs.wandb.resume = run_id, "allow"  # one wandb run per resumed run
    loggers = [instantiate(c) for c in logger_cfgs.values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer.fit(
        module, datamodule=datamodule, ckpt_path=resolve_ckpt_path(cfg.ckpt_path, run_dir), weights_only=True
    )
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path if checkpoint else ""
    monitor = checkpoint.monitor if checkpoint else None
    if monitor and checkpoint.best_model_score is not None:
        metrics[BEST_SCORE] = float(checkpoint.best_model_score)
    last = next((c.last_model_path for c in callbacks if isinstance(c, LastCheckpoint)), "")
    if cfg.test and best:
        trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    if trainer.is_global_zero:
        print(f"run directory: {run_dir}")
        print(f"best checkpoint: {best}")
        if BEST_SCORE in metrics:
            print(f"best {monitor}: {metrics[BEST_SCORE]}")
        print(f"last checkpoint: {last}")
        for logger in loggers:
            if hasattr(logger, "experiment") and hasattr(logger.experiment, "dir"):
                print(
                    f"wandb run: {Path(logger.experiment.dir).parent}  (upload later: wandb sync <that dir>)"
                )
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    """What a sweeper optimises: the best value of `callbacks.checkpoint.monitor` over the
    validation epochs (the score of checkpoints/best.ckpt), or None without a validation
    (no checkpoint callback, or `trainer.fast_dev_run`, which turns checkpointing off)."""
    metrics = run_cli(lambda: train(cfg), CONFIG_KEYS)
    return metrics.get(BEST_SCORE)


def main() -> None:
    register_resolvers()
    _hydra_main()


if __name__ == "__main__":
    main()
