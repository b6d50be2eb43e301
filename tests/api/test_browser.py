"""The web page in a real browser (Debian's chromium driven by Playwright) against the real service."""
from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.system
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser tests need Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server.url + "/")
    yield page
    page.close()


@pytest.fixture
def offline_page(browser):
    """A page whose every request to anything but this machine is refused, and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.left_machine = []

    def only_local(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            page.left_machine.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    yield page
    context.close()


@pytest.fixture(scope="module")
def keyed_server(make_server):
    """A server with a key, as `make run` always has one (no worker: the page only lists jobs)."""
    return make_server(api_keys="first-screen-key")


def first_digit_model(server) -> str:
    """The model the first screen opens on: the first image model with labels the service lists."""
    import httpx

    listed = httpx.get(server.url + "/v1/models").json()["models"]
    return next(m["name"] for m in listed if m["card"]["kind"] == "image" and m["card"].get("labels"))


def test_first_screen_shows_a_digit_grid_the_models_modes_and_no_error_text(browser, keyed_server):
    import httpx

    digits = first_digit_model(keyed_server)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    answers = []
    page.on("response", lambda r: answers.append((r.status, urlsplit(r.url).path)))
    page.goto(keyed_server.url + "/")
    # Without a click: a digit model (images with labels) is chosen and a grid of its samples is drawn.
    page.wait_for_function("document.querySelector('#sample-out img')?.naturalWidth > 0")
    assert page.input_value("#model") == digits
    assert page.get_attribute("#sample-out img", "alt") == "samples"
    # The jobs panel asks for the key the server needs instead of showing its 401.
    page.wait_for_function("document.querySelector('#job-prompt').textContent.includes('API key')")
    assert page.eval_on_selector_all(".error", "els => els.map((e) => e.textContent.trim()).filter(Boolean)") == []
    assert page.locator("#key").evaluate("el => el.required")
    # Every mode the service says the model supports, in its order; the icon is the app's own.
    modes = httpx.get(f"{keyed_server.url}/v1/models/{digits}").json()["modes"]
    assert page.eval_on_selector_all("#mode option", "els => els.map((e) => e.textContent)") == modes
    page.select_option("#model", "mnist-cgan")
    modes = httpx.get(keyed_server.url + "/v1/models/mnist-cgan").json()["modes"]
    assert "filtered" in modes
    assert page.eval_on_selector_all("#mode option", "els => els.map((e) => e.textContent)") == modes
    assert page.get_attribute("link[rel=icon]", "href") == "/favicon.ico"
    assert page.request.get(keyed_server.url + "/favicon.ico").status == 200
    refused = [(status, path) for status, path in answers if status >= 400]
    assert refused == [(401, "/v1/jobs")], refused  # the key prompt's probe, and nothing else
    page.close()


def requests_to(page, part: str) -> list[tuple[str, str]]:
    """Record (method, url) of the page's requests whose URL contains `part`, from now on."""
    sent: list[tuple[str, str]] = []
    page.on("request", lambda r: part in r.url and sent.append((r.method, r.url)))
    return sent


def test_forms_check_their_fields_before_sending_anything(browser, keyed_server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(keyed_server.url + "/")
    page.wait_for_function("document.querySelector('#sample-out img')?.naturalWidth > 0")
    sampled, jobs, translated = requests_to(page, "/samples"), requests_to(page, "/v1/jobs"), requests_to(page, "/translate")
    limits = page.request.get(keyed_server.url + "/v1/limits").json()
    # n above the configured max_n: the browser's own message, and no request.
    page.fill("#n", str(limits["max_n"] + 1))
    page.click("#sample-button")
    assert page.eval_on_selector("#n", "el => el.validationMessage")
    # Labels the model does not know, or not one per sample.
    page.fill("#n", "2")
    page.fill("#labels", "3,12")
    page.click("#sample-button")
    assert f"'12' is not a label of {first_digit_model(keyed_server)} (0–9)" in page.eval_on_selector("#labels", "el => el.validationMessage")
    page.fill("#labels", "3,3,7")
    assert "3 given for n = 2" in page.eval_on_selector("#labels", "el => el.validationMessage")
    page.fill("#labels", "3:1,7:2")
    assert "the counts add up to 3, and n is 2" in page.eval_on_selector("#labels", "el => el.validationMessage")
    page.click("#sample-button")
    assert sampled == []
    page.fill("#labels", "3:1,7:1")
    with page.expect_response(lambda r: "samples.png" in r.url) as answer:
        page.click("#sample-button")
    assert answer.value.ok and "labels=3%3A1%2C7%3A1" in answer.value.url
    # An unconditional model takes no labels: the field is off.
    page.select_option("#model", "mnist-dcgan")
    assert page.is_disabled("#labels") and page.input_value("#labels") == ""
    # A job: steps past max_steps, and no key where the server needs one.
    page.select_option("#family", "quadratic")
    page.fill("#steps", str(limits["max_steps"] + 1))
    page.click("#job-button")
    assert page.eval_on_selector("#steps", "el => el.validationMessage")
    page.fill("#steps", "100")
    page.click("#job-button")
    assert page.eval_on_selector("#key", "el => el.validationMessage")
    assert [method for method, _ in jobs if method == "POST"] == []
    # Translate with nothing chosen translates samples of the first digit model; with no files and no samples,
    # it asks for files instead of sending.
    page.click("#tab-translate")
    assert page.input_value("#translate-source") == "mnist-cgan"
    with page.expect_response(lambda r: r.url.endswith("/translate")) as answer:
        page.click("#translate-button")
    assert answer.value.ok
    page.wait_for_function("document.querySelector('#translate-out img')?.naturalWidth > 0")
    translated.clear()
    page.select_option("#translate-source", "")
    page.click("#translate-button")
    assert "choose images" in page.eval_on_selector("#translate-file", "el => el.validationMessage")
    assert translated == []
    page.close()


def test_publish_as_says_what_a_blank_name_does(page):
    page.wait_for_selector("#family option[value=quadratic]", state="attached")
    page.select_option("#family", "quadratic")
    assert page.get_attribute("#job-model", "placeholder") == "blank: publishes as quadratic-<short job id>"
    page.select_option("#family", "mnist-cgan")
    assert page.get_attribute("#job-model", "placeholder") == "blank: publishes as mnist-cgan-<short job id>"


def test_playground_shows_samples_from_a_model(page):
    page.wait_for_selector("#model option[value=quadratic]", state="attached")
    page.select_option("#model", "quadratic")
    page.click("#sample-button")
    img = page.wait_for_selector("#sample-out img")
    page.wait_for_function("document.querySelector('#sample-out img').naturalWidth > 0")
    assert img.get_attribute("alt") == "samples"


def test_playground_shows_the_error_the_service_answers(page):
    """What the form cannot check (the candidate budget of nice) comes back from the service and is shown."""
    page.select_option("#model", "mnist-cgan")
    page.select_option("#mode", "nice")
    page.fill("#n", "1024")
    page.click("#sample-button")
    error = page.wait_for_selector("#sample-out .error")
    assert "max_candidates" in error.inner_text()
    page.fill("#n", "16")
    page.select_option("#mode", "plain")


def test_truncation_slider_and_walk_strip_send_their_fields(page):
    page.select_option("#model", "quadratic")
    page.eval_on_selector("#truncation", "el => { el.value = '0.5'; el.dispatchEvent(new Event('input')); }")
    assert page.inner_text("#psi") == "0.50"
    with page.expect_response(lambda r: "samples.png" in r.url) as sampled:
        page.click("#sample-button")
    assert sampled.value.ok and "truncation=0.5" in sampled.value.url
    with page.expect_response(lambda r: "walk=" in r.url) as walked:
        page.click("#walk-button")
    assert walked.value.ok and "walk=7..8" in walked.value.url and "steps=8" in walked.value.url
    page.wait_for_function("document.querySelector('#walk-out img.strip')?.naturalWidth > 0")
    page.eval_on_selector("#truncation", "el => { el.value = '1'; el.dispatchEvent(new Event('input')); }")


def test_walk_strip_of_an_image_model_is_a_row_and_a_loop(browser, serving_server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(serving_server.url + "/")
    page.wait_for_selector("#model option[value=mnist-dcgan]", state="attached")
    page.select_option("#model", "mnist-dcgan")
    page.fill("#walk-steps", "6")
    page.click("#walk-button")
    page.wait_for_function("document.querySelector('#walk-out img.animation')?.naturalWidth > 0")
    size = page.evaluate("(() => { const i = document.querySelector('#walk-out img.strip');"
                         " return [i.naturalWidth, i.naturalHeight]; })()")
    assert size == [6 * 28, 28]
    page.close()


def test_mode_choice_offers_filtered_for_labelled_image_models_only(browser, serving_server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(serving_server.url + "/")
    page.wait_for_selector("#model option[value=mnist-cgan]", state="attached")
    page.select_option("#model", "mnist-cgan")
    page.wait_for_selector("#mode option:text-is('filtered')", state="attached")
    page.select_option("#mode", "filtered")
    page.fill("#n", "4")
    page.fill("#labels", "3,3,7,7")
    with page.expect_response(lambda r: "samples.png" in r.url) as sampled:
        page.click("#sample-button")
    assert sampled.value.ok, sampled.value.text()
    assert "mode=filtered" in sampled.value.url and "labels=3%2C3%2C7%2C7" in sampled.value.url
    page.wait_for_function("document.querySelector('#sample-out img')?.naturalWidth > 0")
    page.select_option("#model", "mnist-dcgan")  # unlabelled: no filtered, and the choice falls back to plain
    options = page.eval_on_selector_all("#mode option", "els => els.map((e) => e.textContent)")
    assert options == ["plain", "nice", "rejection"] and page.input_value("#mode") == "plain"
    page.select_option("#model", "mnist-cgan")
    assert "filtered" in page.eval_on_selector_all("#mode option", "els => els.map((e) => e.textContent)")
    page.close()


def test_translate_tab_shows_input_and_output_side_by_side(browser, serving_server, tmp_path):
    import numpy as np
    from PIL import Image

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(serving_server.url + "/")
    page.wait_for_selector("#translator option[value=digits-cyclegan]", state="attached")
    assert page.locator("#model option[value=digits-cyclegan]").count() == 0  # not offered for sampling
    page.click("#tab-translate")
    assert page.is_hidden("#samples-panel") and page.is_visible("#translate-form")
    assert page.locator("#direction option").all_inner_texts() == ["mnist → uci", "uci → mnist"]
    # Samples of a digit model as the input: 8 pairs in a 4×2 grid of (input | output + gap).
    page.select_option("#translate-source", "mnist-dcgan")
    with page.expect_response(lambda r: r.url.endswith("/translate")) as translated:
        page.click("#translate-button")
    assert translated.value.ok
    page.wait_for_function("document.querySelector('#translate-out img')?.naturalWidth > 0")
    size = page.evaluate("(() => { const i = document.querySelector('#translate-out img');"
                         " return [i.naturalWidth, i.naturalHeight]; })()")
    assert size == [2 * 60, 4 * 28]
    # An uploaded 8×8 PNG (fitted into 28×28 as MNIST was), the other way.
    digit = np.zeros((8, 8), np.uint8)
    digit[2:6, 3:5] = 255
    Image.fromarray(digit).save(tmp_path / "one.png")
    page.select_option("#direction", "b_to_a")
    page.set_input_files("#translate-file", str(tmp_path / "one.png"))
    with page.expect_response(lambda r: r.url.endswith("/translate")) as translated:
        page.click("#translate-button")
    assert translated.value.ok and translated.value.headers["x-direction"] == "b_to_a"
    page.wait_for_function("document.querySelector('#translate-out img')?.naturalWidth === 60")
    page.close()


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


def test_docs_list_every_operation_with_the_outside_network_blocked(offline_page, server):
    import httpx

    operations = [op["operationId"] for methods in httpx.get(server.url + "/openapi.json").json()["paths"].values()
                  for op in methods.values()]
    offline_page.goto(server.url + "/docs")
    offline_page.wait_for_selector(".opblock", timeout=30_000)
    shown = offline_page.locator(".opblock .opblock-summary-operation-id").all_inner_texts()
    assert sorted(shown) == sorted(operations)
    assert offline_page.locator(".authorize").count() == 1  # the bearer scheme: an Authorize button
    offline_page.goto(server.url + "/redoc")
    offline_page.wait_for_selector('[data-section-id="operation/sampleModel"]', state="attached", timeout=30_000)
    assert offline_page.left_machine == []


def test_with_keys_the_page_lists_and_follows_jobs_once_the_key_is_entered(browser, service_env, worker,
                                                                           tmp_path_factory):
    from tests.utils import Server

    key = "page-key-31d0"
    srv = Server({**service_env, "GANSERVE_API_KEYS": key}, tmp_path_factory.mktemp("keyed-page") / "server.log")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(srv.url + "/")
        page.wait_for_function("document.querySelector('#job-prompt').textContent.includes('API key')")
        page.fill("#key", key)
        page.select_option("#family", "quadratic")
        page.fill("#steps", "2000")
        page.click("#job-button")
        job = page.wait_for_selector(".job")
        page.wait_for_function("document.querySelector('.job .state').textContent === 'succeeded'", timeout=120_000)
        assert "version 1 published" in job.query_selector(".detail").inner_text()
        page.wait_for_function("document.querySelector('.job .snapshot').naturalWidth > 0")
    finally:
        page.close()
        srv.stop()
