"""The web UI never imports torch: every page and Home.py render with `import torch` blocked.

The embedded model lives in its own server process; a page that pulled torch in would
bring back seconds of GIL-holding imports and a second copy of the model. Runs in a fresh
interpreter, since this test process may have imported torch already.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"the UI imported {name}")
            return None

    sys.meta_path.insert(0, BlockTorch())

    from pathlib import Path
    from streamlit.testing.v1 import AppTest

    failures = []
    for page in ["Home.py", *sorted(str(p) for p in Path("pages").glob("*.py"))]:
        at = AppTest.from_file(page, default_timeout=120).run()
        if at.exception:
            failures.append(f"{page}: {at.exception[0].message}")
    assert "torch" not in sys.modules, "torch was imported"
    print("\\n".join(failures) or "ok")
    sys.exit(1 if failures else 0)
    """
)


def test_every_page_renders_with_torch_blocked(tmp_path):
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    env.pop("WORKBENCH_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
