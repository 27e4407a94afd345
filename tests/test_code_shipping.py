from __future__ import annotations

import subprocess
import sys

from unimixer_plan.search.code_shipping import package_folder


def test_the_shipped_folder_is_the_whole_package_importable_on_its_own(tmp_path):
    folder = package_folder(tmp_path)
    assert folder.name == "unimixer_plan"
    assert not list(folder.rglob("__pycache__"))
    assert list((folder / "search_spaces").glob("*.yaml"))  # package data travels too
    # imported from the shipped folder alone, as a worker's Python would (the folder's parent first on the path)
    probe = (
        f"import sys; sys.path.insert(0, {str(folder.parent)!r})\n"
        "import unimixer_plan.search.trainable, unimixer_plan.mixers.sinkhorn, unimixer_plan.reports\n"
        "import unimixer_plan.search_spaces\n"
        "print('\\n'.join(m.__file__ for m in (unimixer_plan, unimixer_plan.mixers.sinkhorn, "
        "unimixer_plan.search.trainable, unimixer_plan.search_spaces)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(line.startswith(str(folder)) for line in done.stdout.split())
