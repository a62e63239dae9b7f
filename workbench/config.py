"""Where things live and which switches are set, read from the environment.

Everything is read at call time (not import time) so tests can point WORKBENCH_HOME
at a temporary directory per test.
"""

from __future__ import annotations

import os
from pathlib import Path

# litellm fetches its price map from the internet at import time unless told not to;
# offline that costs ~10 s of retries, so every entry point imports this module first.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # ragas posts usage events otherwise

from storage.settings import database_url as database_url  # noqa: E402  (re-exported: storage owns it)
from storage.settings import home as home  # noqa: E402


def _app_root() -> Path:
    """Where Home.py, ui_common.py, pages/ and sample_data/ are: the top of a checkout, or
    workbench/app/ in an installed wheel (see setup.py)."""
    package = Path(__file__).resolve().parent
    checkout = package.parent
    return checkout if (checkout / "Home.py").is_file() else package / "app"


APP_ROOT = _app_root()
REPO_ROOT = APP_ROOT  # the name the rest of the code still uses
SAMPLE_DATA = APP_ROOT / "sample_data"


def model_cache() -> Path:
    """Where converted model checkpoints are kept: shared by every WORKBENCH_HOME on the machine,
    since they depend only on the installed model file (tests move the home per test)."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "prompt-workbench"
    return Path(os.environ.get("WORKBENCH_MODEL_CACHE") or default).expanduser()


def author() -> str:
    """Who is saving: recorded on versions and label moves; not an authentication system."""
    return os.environ.get("WORKBENCH_USER") or os.environ.get("USER") or "anonymous"
