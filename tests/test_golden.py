"""Every built-in algorithm reproduces its pinned numbers bit for bit, at 1 and 3 ranks (tests/golden.py)."""

import sys

import numpy as np
import pytest
from golden import CASES, DATA, numbers, write_configs
from helpers import MPIEXEC, ROOT, _run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("golden")
    write_configs(folder)
    for nprocs in (1, 3):
        cmd = [MPIEXEC, "-n", str(nprocs), sys.executable, str(ROOT / "tests" / "run_cases.py"), str(folder), *CASES]
        _run(cmd, timeout=600, check=True, env=None)
    return folder


@pytest.mark.mpi
@pytest.mark.parametrize("nprocs", [1, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_numbers_are_the_pinned_ones(runs, case, nprocs):
    expected = dict(np.load(DATA / f"{case}.npz"))
    got = numbers(runs / f"{case}-{nprocs}.h5")
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=f"{case}: {name} differs at -n {nprocs}")
