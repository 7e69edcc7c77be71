"""Library errors name the library's parameters; the CLIs name their own flags."""

import subprocess
import sys

import numpy as np
import pytest

from seqmodel.data.splits import block_splits
from seqmodel.errors import ParameterError, SeqmodelInputError, run_cli


def test_library_error_names_the_parameter_not_a_flag():
    with pytest.raises(ParameterError) as caught:
        block_splits([("chr1", 0, 100, "a")], 0, 0.1, 0.1, seed=0)
    assert caught.value.parameter == "block_size"
    assert "--" not in str(caught.value)


def test_run_cli_names_the_flag_of_a_parameter(capsys):
    def bad():
        raise ParameterError("block_size", "0 must be >= 1")

    with pytest.raises(SystemExit) as stopped:
        run_cli(bad, {"block_size": "--split-block"})
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "error: --split-block: 0 must be >= 1\n"


def test_run_cli_without_a_mapping_names_the_parameter(capsys):
    with pytest.raises(SystemExit):
        run_cli(lambda: (_ for _ in ()).throw(SeqmodelInputError("x.vcf", "line 3", "bad POS")))
    assert capsys.readouterr().err == "error: x.vcf:line 3: bad POS\n"


def test_simulate_library_error_has_no_flag():
    from seqmodel.simulate import simulate

    with pytest.raises(ParameterError) as caught:
        simulate([], np.full(96, 1 / 96), mean_rate=2.0, genomes=10, seed=0)
    assert caught.value.parameter == "mean_rate"


def test_evaluate_bad_output_is_one_line_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "seqmodel.evaluate", "ckpt_path=x.ckpt", f"output={tmp_path}/r.txt"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path}/r.txt: output must be a .json file"]
