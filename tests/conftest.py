import atexit
import os
import shutil
import tempfile
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "2")
# the search's on-disk batch cache: a folder of this test session's, not the user's ~/.cache/pixelnas
os.environ["PIXELNAS_CACHE"] = tempfile.mkdtemp(prefix="pixelnas-test-cache-")
atexit.register(shutil.rmtree, os.environ["PIXELNAS_CACHE"], ignore_errors=True)


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    return ROOT / "assets"


@pytest.fixture(scope="module")
def app_url():
    """The app launched in-process with its safety settings; Gradio binds the first free port from 7860 itself,
    so there is no gap between choosing a port and binding it. Yields the local URL; closes the server after."""
    import app

    demo = app.build_app()
    _, local_url, _ = app.launch(demo, port=None, prevent_thread_lock=True, quiet=True)
    yield local_url
    demo.close()
