"""The package layout; the rest of the metadata is in pyproject.toml.

The Hydra configs and the demo data stay in the project's top-level `configs/` and `data/`
folders and are installed inside the package as `seqmodel/configs` and `seqmodel/demo_data`,
so that a wheel or a plain install finds them (seqmodel/config.py looks there first, then in
the source checkout). Each config group folder is a data-only package of its own.
"""

from setuptools import find_namespace_packages, find_packages, setup

CONFIG_GROUPS = find_namespace_packages("configs")  # configs/data -> "data", ...
CONFIG_PACKAGES = ["seqmodel.configs", *(f"seqmodel.configs.{group}" for group in CONFIG_GROUPS)]
DEMO_DATA = ["README.md", "*.fa.gz", "*.vcf.gz", "*.bedgraph.gz", "*.bed", "*.tsv", "*.jaspar", "*.meme"]

setup(
    packages=[*find_packages(include=["seqmodel", "seqmodel.*"]), *CONFIG_PACKAGES, "seqmodel.demo_data"],
    package_dir={"seqmodel.configs": "configs", "seqmodel.demo_data": "data"},
    package_data={
        **{name: ["*.yaml"] for name in CONFIG_PACKAGES},
        # The files of data/ itself: data/prepared/ (scripts/prepare_results_data.sh) is not shipped.
        "seqmodel.demo_data": DEMO_DATA,
    },
)
