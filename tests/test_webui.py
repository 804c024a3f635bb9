"""NNI's web UI checked in a real browser: a small nnictl experiment runs to DONE, its "Trials
detail" page is rendered in headless Chromium (Debian's ``chromium``, installed by
``scripts/install_sysdeps.sh``), and the rendered page must show every trial and our metric keys
with their values. The screenshot is kept in ``runs/webui/<test name>.png`` for a person to look at.
"""

from __future__ import annotations

import shutil

import pytest
from nnictl_helpers import ROOT, free_port, small_nsga2_config
from webui import find_chromium, render_dom, run_experiment_and_check, screenshot

pytestmark = [
    pytest.mark.webui,
    pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed "
                       "(Debian: apt-get install chromium, or `make sysdeps` as root; or set $CHROMIUM)"),
]

SCREENSHOTS = ROOT / "runs" / "webui"


def _keep(png, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, SCREENSHOTS / f"{name}.png")


def test_render_dom_and_screenshot_run_javascript(tmp_path):
    page = "data:text/html,<div id=x></div><script>x.textContent='rendered '+(6*7)</script>"
    assert "rendered 42" in render_dom(page, wait_ms=1000)
    png = screenshot(page, tmp_path / "page.png", size=(320, 200), wait_ms=1000)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_webui_shows_trials_and_metric_keys(tiny_supernet, tmp_path, request):
    """nnictl + NSGA2Tuner (strategies/ofa-nsga2.yml, shrunk to 2 trials): the table on /detail
    shows both trials, their Trial No., and default/top1/macs/params with each trial's values."""
    # The experiment under test: any nnictl config, a YAML path (ROOT / "strategies" / "eas.yml") or a
    # dict, with the metric keys its trials report; a trial is checked for the keys it reports.
    config = small_nsga2_config(tiny_supernet, max_trials=2, archs_per_trial=4)
    png = tmp_path / "webui.png"
    try:
        table = run_experiment_and_check(config, port=free_port(), expected_keys=["default", "top1", "macs", "params"],
                                         screenshot_path=png, workdir=tmp_path)
    finally:
        if png.is_file():
            _keep(png, request.node.name)
    assert len(table["rows"]) == 2
