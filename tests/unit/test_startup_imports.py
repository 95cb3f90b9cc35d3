"""The running gateway does not load the report charts' plotting stack: matplotlib and
numpy cost ~45 MB of resident memory on an edge box, and only a monthly report needs
them (`stationgw bench`: memory)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_starting_the_gateway_does_not_import_matplotlib() -> None:
    code = (
        "import sys, gateway.cli, gateway.app; "
        "print(sorted(m for m in ('matplotlib', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
