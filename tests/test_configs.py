"""The Hydra configs: every option of every group composes against the schemas of seqmodel/config.py,
the schemas match what the code accepts, and a misspelt key is refused with its name."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from seqmodel.config import CONFIG_DIR, DEMO_DATA_DIR, PACKAGE_DIR, prepared_data_dir

PRIMARY = ("train", "predict", "evaluate")
PREDICT_REQUIRED = ["ckpt_path=model.ckpt", "input=in.fa", "output=out.bedgraph"]


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def groups() -> list[str]:
    return sorted(path.name for path in CONFIG_DIR.iterdir() if path.is_dir())


def config(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def refusal(name: str, *overrides: str) -> str:
    """The message of the error that refuses the composition."""
    with pytest.raises(ConfigCompositionException) as error:
        config(name, *overrides)
    cause, text = error.value, ""
    while cause is not None:  # Hydra wraps OmegaConf's error, which names the full key
        text += f"{cause}\n"
        cause = cause.__cause__
    return text


def test_config_folder_is_found_and_holds_every_group():
    assert (CONFIG_DIR / "train.yaml").is_file()
    assert CONFIG_DIR in (PACKAGE_DIR / "configs", PACKAGE_DIR.parent / "configs")
    expected = {"callbacks", "data", "debug", "experiment", "loader", "logger", "model", "predict", "trainer"}
    assert expected <= set(groups())


@pytest.mark.parametrize(
    "group,option",
    [
        (group, option)
        for group in ("model", "data", "loader", "trainer", "logger", "callbacks", "experiment", "debug")
        for option in options(group)
    ],
)
def test_every_train_option_composes_against_the_schema(group, option):
    cfg = config("train", f"{group}={option}")
    for key in ("model", "data", "loader", "cuda"):
        assert OmegaConf.missing_keys(cfg[key]) == set(), (group, option, key)
        OmegaConf.to_container(cfg[key], resolve=True)  # every interpolation resolves
    assert OmegaConf.get_type(cfg, "data").__name__ == "DataConfig"
    assert cfg.trainer._target_ == "lightning.Trainer"


@pytest.mark.parametrize("option", options("data"))
def test_every_evaluate_data_option_composes(option):
    cfg = config("evaluate", "ckpt_path=model.ckpt", f"data={option}")
    assert OmegaConf.missing_keys(cfg) == set()
    OmegaConf.to_container(cfg, resolve=True)


def test_data_options_share_every_key():
    """Any data option takes any data key (these options did not list token_cache before)."""
    keys = {option: set(config("train", f"data={option}").data) for option in options("data")}
    assert len({frozenset(k) for k in keys.values()}) == 1, keys
    cfg = config("train", "data=ctcf_regional", "data.token_cache=/x")
    assert cfg.data.token_cache == "/x"
    assert cfg.data.split_from_headers  # the option's own value is kept
    assert config("evaluate", "ckpt_path=m", "data=p73_regional", "data.split_from_headers=true").data[
        "split_from_headers"
    ]


def test_predict_block_is_shared_by_predict_and_evaluate():
    predict = config("predict", *PREDICT_REQUIRED)
    evaluate = config("evaluate", "ckpt_path=model.ckpt")
    assert predict.predict == evaluate.predict
    assert OmegaConf.missing_keys(predict) == set()
    assert config("evaluate", "ckpt_path=m", "predict.rc_average=false").predict.rc_average is False
    for name in ("predict.yaml", "evaluate.yaml"):
        assert "\npredict:" not in (CONFIG_DIR / name).read_text(), name


@pytest.mark.parametrize(
    "name,override,key",
    [
        ("train", "data.tokn_cache=/x", "tokn_cache"),
        ("train", "model.trunk.hiden_size=8", "hiden_size"),
        ("train", "loader.batchsize=8", "batchsize"),
        ("train", "sed=1", "sed"),
        ("predict", "predict.batchsize=8", "batchsize"),
        ("evaluate", "baselines.kmer_size=[3]", "kmer_size"),
    ],
)
def test_misspelt_key_is_refused_with_its_name(name, override, key):
    overrides = [*PREDICT_REQUIRED] if name == "predict" else ["ckpt_path=m"] if name == "evaluate" else []
    assert key in refusal(name, *overrides, override)


def test_misspelt_key_in_an_option_file_is_refused_with_its_name(tmp_path: Path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "typo.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /data: ctcf_regional\ndata:\n  windw: 500\n"
    )
    message = refusal("train", f"hydra.searchpath=[file://{tmp_path}]", "experiment=typo")
    assert "windw" in message


def test_wrong_type_is_refused():
    assert "data.window" in refusal("train", "data.window=abc")
    assert "predict.batch_size" in refusal("predict", *PREDICT_REQUIRED, "predict.batch_size=many")


def test_schema_keys_are_the_arguments_the_code_takes():
    from seqmodel.data.datamodule import SeqDataModule
    from seqmodel.models.network import PerBaseHead, PooledHead, Trunk

    cfg = config("train")
    inspect.signature(SeqDataModule).bind(**cfg.data, **cfg.loader, seed=cfg.seed)
    inspect.signature(Trunk).bind(**cfg.model.trunk)
    inspect.signature(PerBaseHead).bind(1, **cfg.model.per_base_head)
    inspect.signature(PooledHead).bind(1, num_classes=2, **cfg.model.pooled_head)


def test_default_data_paths_are_the_demo_files_wherever_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = config("train").data
    for key in ("fasta", "mutations", "true_rate"):
        assert Path(data[key]).is_absolute() and Path(data[key]).is_file(), data[key]
        assert Path(data[key]).parent == DEMO_DATA_DIR
    regional = config("train", "data=ctcf_regional").data
    assert regional.fasta == str(prepared_data_dir() / "ctcf" / "regions.fa.gz")
    # a path given by the user stays as given: relative to the working directory (no chdir)
    assert config("train", "data.fasta=my.fa").data.fasta == "my.fa"


@pytest.mark.parametrize("name", PRIMARY)
def test_runs_keep_the_working_directory(name):
    """Relative paths on the command line are read from where the command runs."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(name, overrides=["ckpt_path=m"] if name == "evaluate" else [], return_hydra_config=True)
    assert cfg.hydra.job.chdir is False
