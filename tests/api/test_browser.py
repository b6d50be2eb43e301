"""The web page in a real browser (Debian's chromium driven by Playwright) against the real service."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page(server):
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser tests need Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url + "/")
        yield page
        browser.close()


def test_playground_shows_samples_from_a_model(page):
    page.wait_for_selector("#model option[value=quadratic]", state="attached")
    page.select_option("#model", "quadratic")
    page.click("#sample-button")
    img = page.wait_for_selector("#sample-out img")
    page.wait_for_function("document.querySelector('#sample-out img').naturalWidth > 0")
    assert img.get_attribute("alt") == "samples"


def test_playground_shows_the_error_of_a_bad_request(page):
    page.fill("#labels", "3")
    page.click("#sample-button")
    error = page.wait_for_selector("#sample-out .error")
    assert "unconditional" in error.inner_text()
    page.fill("#labels", "")


def test_job_shows_live_progress_plots_and_result(page, worker, tmp_path):
    page.select_option("#family", "quadratic")
    page.fill("#steps", "3000")
    page.click("#job-button")
    job = page.wait_for_selector(".job")
    # Live: the progress bar moves before the job ends.
    page.wait_for_function("(() => { const p = document.querySelector('.job progress');"
                           " return p.value > 0 && p.value < 1; })()", timeout=60_000)
    page.wait_for_function("document.querySelector('.job .state').textContent === 'succeeded'", timeout=120_000)
    # 3,000 steps collapse the quadratic: published, and the page says plainly the default did not move.
    detail = job.query_selector(".detail").inner_text()
    assert "published, but the default is unchanged" in detail and "gate failed" in detail, detail
    assert "gate-failed" in job.get_attribute("class")
    # The loss plot has lines drawn on it, and a snapshot of samples is shown.
    drawn = page.evaluate("""(() => { const c = document.querySelector('.job canvas.loss');
        const d = c.getContext('2d').getImageData(0, 20, c.width, c.height - 20).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()""")
    assert drawn > 100
    page.wait_for_function("document.querySelector('.job .snapshot').naturalWidth > 0")
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
