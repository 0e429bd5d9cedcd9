"""Run several configs one after another in one MPI job: ``mpiexec -n K python tests/run_cases.py DIR NAME...``.

Each NAME is DIR/NAME.toml, written to DIR/NAME-K.h5; one interpreter start serves every case.
"""

import sys
from pathlib import Path

from mpidrl.cli import main

folder, names = Path(sys.argv[1]), sys.argv[2:]
size = None
for name in names:
    from mpidrl.comm import Runtime

    size = size or Runtime().size
    code = main(["run", str(folder / f"{name}.toml"), "--out", str(folder / f"{name}-{size}.h5"), "--overwrite"])
    if code:
        sys.exit(code)
