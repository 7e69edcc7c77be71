"""Where the Hydra configs and the demo data live, and the config resolvers they use."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "configs"
DEMO_DATA_DIR = PROJECT_ROOT / "data"


def register_resolvers() -> None:
    """`${seqmodel_data:name}`: the absolute path of a file in the project's `data/` folder."""
    if not OmegaConf.has_resolver("seqmodel_data"):
        OmegaConf.register_new_resolver("seqmodel_data", lambda name: str(DEMO_DATA_DIR / name))
