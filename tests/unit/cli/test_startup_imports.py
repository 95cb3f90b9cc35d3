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


def test_the_startup_heap_is_frozen_after_its_garbage_is_collected() -> None:
    """`stationgw run` keeps start-up's objects out of the collector's full passes (a
    pass over them stopped the loop for 60-120 ms); garbage made before the freeze is
    not kept, and cycles made after it are still collected."""
    code = (
        "import gc, weakref, gateway.app\n"
        "class Node: pass\n"
        "def cycle():\n"
        "    a, b = Node(), Node(); a.b, b.a = b, a\n"
        "    return weakref.ref(a)\n"
        "gc.disable(); before = cycle()\n"
        "gateway.app._freeze_startup_heap()\n"
        "after = cycle(); gc.collect()\n"
        "print(before() is None, gc.get_freeze_count() > 1000, after() is None)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "True", "True"]
