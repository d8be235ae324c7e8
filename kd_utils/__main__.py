"""``python -m kd_utils [--check]``: find Fashion-MNIST offline and put it in data/ (see kd_utils.data.main).

A package entry point, so that Python does not warn about running a submodule the package
has already imported (as ``python -m kd_utils.data`` would).
"""

from .data import main

raise SystemExit(main())
