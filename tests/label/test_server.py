"""A real MONAI Label server on the sample app answers ``/infer`` over HTTP with an aligned mask and heatmap.

Opt-in: monailabel 0.8.5 needs its own environment (pydicom<3; see monai_d2fad/label/sample_app/README.md), too slow
to build in CI. Build it once, then ``D2FAD_LABEL_VENV=/path/to/venv python -m pytest -q tests/label/test_server.py``.
"""

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

import monai_d2fad
from tests.files import write_png

VENV = os.environ.get("D2FAD_LABEL_VENV")
pytestmark = pytest.mark.skipif(
    not VENV, reason="opt-in: set D2FAD_LABEL_VENV to a venv with monailabel (sample_app/README.md)"
)
APP = os.path.join(os.path.dirname(monai_d2fad.__file__), "label", "sample_app")
SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "medfsad", "chest_xray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _study(folder) -> str:
    """A real chest X-ray when ../shared is there (any size), else a 70 x 90 ramp; returns its id."""
    os.makedirs(folder)
    pneumonia = os.path.join(SHARED, "test", "pneumonia")
    if os.path.isdir(pneumonia):
        image = Image.open(os.path.join(pneumonia, sorted(os.listdir(pneumonia))[0])).convert("L")
        image.save(os.path.join(folder, "cxr.png"))
        return "cxr"
    write_png(os.path.join(folder, "ramp.png"), (np.tile(np.linspace(0, 255, 90), (70, 1))).astype(np.uint8))
    return "ramp"


def _post(url: str) -> bytes:
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=300) as answer:
        return answer.read()


def test_server_answers_infer_with_an_aligned_mask_and_heatmap(task_package_file, tmp_path):
    studies, server_tmp, app = str(tmp_path / "studies"), tmp_path / "server_tmp", str(tmp_path / "app")
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))  # the server writes logs/ into it
    image_id = _study(studies)
    server_tmp.mkdir()
    port = _free_port()
    command = [os.path.join(VENV, "bin", "monailabel"), "start_server", "--app", app, "--studies", studies,
               "--conf", "task_package", task_package_file(), "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    env = dict(os.environ, TMPDIR=str(server_tmp), MONAI_LABEL_DATASTORE_AUTO_RELOAD="false")
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                info = json.loads(urllib.request.urlopen(f"{base}/info/", timeout=5).read())
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                time.sleep(1)
        else:
            pytest.fail("the server did not start in 240 s:\n" + (tmp_path / "server.log").read_text()[-3000:])
        assert "d2fad_anomaly" in info["models"]
        with Image.open(os.path.join(studies, f"{image_id}.png")) as source:
            size = source.size
        params = json.loads(_post(f"{base}/infer/d2fad_anomaly?image={image_id}&output=json"))
        params = params.get("params", params)
        assert params["anomalous"] == (params["score"] >= params["threshold"]["value"])
        header, encoded = params["heatmap"].split(",", 1)
        assert header == "data:image/png;base64"
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as heatmap:
            assert heatmap.size == size and heatmap.mode == "RGB"
        with Image.open(io.BytesIO(_post(f"{base}/infer/d2fad_anomaly?image={image_id}&output=image"))) as mask:
            assert mask.size == size  # lies on the image in a viewer
            assert set(np.unique(np.asarray(mask))) <= {0, 1}
        time.sleep(2)  # the server removes the sent mask in a background task
        assert not [f for f in os.listdir(server_tmp) if f.startswith("d2fad-mask-")]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
