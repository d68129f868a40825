"""The MLflow UI over a smoke sweep's store, in headless Chromium (slow: a sweep, a server, a browser).

`mlflow server` on 127.0.0.1 (a free port) serves the store of `sweeps/ztf_to_lsst.py --smoke-test`;
Playwright drives Debian's Chromium (/usr/bin/chromium, installed by .ci/run). Checked: the
experiment page (in the model-training view) lists the sweep and its nested fraction runs; a
fraction's trials open in the compare view with transfer.freeze_depth, train.lr and test_macro_f1;
a champion trial shows its model and confusion-matrix artifacts; a registered model shows its
`champion` alias. Screenshots go to the test's directory, and to $TL_SCREENSHOTS when it is set
(docs/img/ of the README).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
import urllib.request

import pytest

from ray_fixture import ray_session  # noqa: F401  (a fixture)
from mlflow_server import running_server
from tl.sweep import tracking
from tl.sweep.runs import fraction_run_name, sweep_run_name
from test_sweeps import FAST, load_script

CHROMIUM = "/usr/bin/chromium"
EXPERIMENT = "ztf_to_lsst"
TIMEOUT_MS = 120_000  # a loaded 2-core machine renders the UI slowly

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(ray_session, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("browser_sweep")
    assert load_script(EXPERIMENT).main([*FAST, "--verbose", "--out", str(out)]) == 0
    return f"sqlite:///{out}/mlflow.db"


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    with running_server(store, tmp_path_factory.mktemp("mlflow_server") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1600, "height": 1000})
        tab.set_default_timeout(TIMEOUT_MS)
        yield tab
        browser.close()


def screenshot(page, directory, name: str) -> None:
    path = os.path.join(directory, name)
    page.screenshot(path=path)
    if os.environ.get("TL_SCREENSHOTS"):
        os.makedirs(os.environ["TL_SCREENSHOTS"], exist_ok=True)
        shutil.copy(path, os.path.join(os.environ["TL_SCREENSHOTS"], name))


def test_the_ui_shows_nesting_comparison_artifacts_and_aliases(store, server, page, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    (fraction,) = tracking.find_runs(client, experiment_id, {tracking.ROLE: "fraction", "data.target_fraction": "0.25"})
    trials = tracking.find_runs(client, experiment_id, {"mlflow.parentRunId": fraction.info.run_id})
    assert all(run.info.status == "FINISHED" for run in client.search_runs([experiment_id]))

    # 1. The experiment page, model-training view: the sweep run and, expanded, its nested runs.
    page.goto(f"{server}/#/experiments/{experiment_id}{tracking.EXPERIMENT_VIEW}")
    expand(page, sweep_run_name(EXPERIMENT))  # nested runs start collapsed under their parent
    page.get_by_text(fraction_run_name(1.0), exact=True).first.wait_for()
    expand(page, fraction_run_name(0.25))
    for run in trials:
        page.get_by_text(run.info.run_name, exact=True).first.wait_for()
    screenshot(page, tmp_path, "mlflow_runs.png")

    # 2. The fraction's trials in the compare view, with the searched params and the test metric.
    query = urllib.parse.urlencode({"runs": json.dumps([run.info.run_id for run in trials]),
                                    "experiments": json.dumps([experiment_id])})
    page.goto(f"{server}/#/compare-runs?{query}&{tracking.EXPERIMENT_VIEW[1:]}")
    for name in ("transfer.freeze_depth", "train.lr", "test_macro_f1", trials[0].info.run_name):
        page.get_by_text(name, exact=True).first.wait_for()
    screenshot(page, tmp_path, "mlflow_compare.png")

    # 3. A registered model with its champion alias, and the champion trial's artifacts.
    name = f"{EXPERIMENT}-transfer-0.25"
    champion = client.get_model_version_by_alias(name, "champion")
    page.goto(f"{server}/#/models/{name}")
    page.get_by_text("champion").first.wait_for()
    page.goto(f"{server}/#/experiments/{experiment_id}/runs/{champion.run_id}/artifacts")
    for artifact in ("model", "model_dir", "confusion_matrix.png"):
        page.get_by_text(artifact, exact=True).first.wait_for()


def expand(page, run_name: str) -> None:
    """Click the expand button of the runs-table row of `run_name` (a parent run)."""
    row = page.locator("[role=row]", has=page.get_by_text(run_name, exact=True))
    row.locator("button[data-component-id*='runnamecellrenderer']").first.click()
