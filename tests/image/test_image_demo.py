"""The bundled demo images: the good one passes every image control, the bad one fails."""

from __future__ import annotations

from image_helpers import IMG, outcomes
from k4c_pytest.demo.images import LAYOUT, demo_image_args
from k4c_pytest.testing import oci

GOOD, BAD = "demo.k4c.invalid/shop/good:1.0", "demo.k4c.invalid/shop/bad:1.0"


def test_demo_layout_is_small():
    assert sum(p.stat().st_size for p in LAYOUT.rglob("*") if p.is_file()) < 64 * 1024


def test_demo_images(run_k4c_module):
    res = run_k4c_module(*demo_image_args())
    assert outcomes(res, GOOD) == dict.fromkeys(IMG, "PASS"), res.stdout[-4000:]
    assert outcomes(res, BAD) == {**dict.fromkeys(IMG, "FAIL"), "K4C-IMG-003": "N/A", "K4C-IMG-005": "PASS"}
    assert oci.CANARY_AWS_KEY not in res.json_path.read_text()
