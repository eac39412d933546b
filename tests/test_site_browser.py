"""Headless Chromium on the smoke-built site: pages load, images show, links work, no JS errors."""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "_build" / "screenshots"
# pages that must show figures / audio players (toc entry -> minimum count)
MIN_IMAGES = {
    "chapters/06_interpretability": 1,
    "chapters/07_exercises": 2,
    "chapters/08_localisation": 2,
    "chapters/09_robustness": 3,
}
MIN_AUDIO = {"chapters/06_interpretability": 2}

pytestmark = [
    pytest.mark.book,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"
    ),
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the browser drops connections it no longer needs (favicon, prefetch)


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[str, object]]:
    """Serve the smoke build's HTML on 127.0.0.1; yield (base URL, the SmokeBook)."""
    from book_build_helpers import smoke_book

    book = smoke_book()
    handler = functools.partial(_QuietHandler, directory=str(book.layout.html))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", book
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _console_error(message, errors: list[str]) -> None:
    """Record console errors; failed loads are recorded by :func:`_failed_response` instead."""
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.append(f"console: {message.text}")


def _failed_response(response, errors: list[str]) -> None:
    """Record HTTP errors, except the browser's own request for /favicon.ico (the site has none)."""
    if response.status >= 400 and urlparse(response.url).path != "/favicon.ico":
        errors.append(f"HTTP {response.status} for {response.url}")


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_every_page_renders_without_errors(site, browser) -> None:
    base, book = site
    pages = ["index", *book.entries]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    links: set[str] = set()
    for entry in pages:
        url = urljoin(base, f"{entry}.html")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg, errors=errors: _console_error(msg, errors))
        page.on("response", lambda response, errors=errors: _failed_response(response, errors))
        response = page.goto(url, wait_until="load")
        if response is None or response.status != 200:
            problems.append(f"{entry}: HTTP {response.status if response else 'no response'}")
            continue
        if entry == "index":  # Jupyter Book's index.html redirects to the root page
            page.wait_for_url(f"**/{book.entries[0]}.html")
            page.wait_for_load_state("load")
        broken = page.evaluate(
            "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
        )
        problems += [f"{entry}: image not shown: {src[:120]}" for src in broken]
        images = page.locator("article img, main img").count()
        audio = page.locator("audio").count()
        if images < MIN_IMAGES.get(entry, 0):
            problems.append(f"{entry}: {images} figure(s), expected >= {MIN_IMAGES[entry]}")
        if audio < MIN_AUDIO.get(entry, 0):
            problems.append(f"{entry}: {audio} audio player(s), expected >= {MIN_AUDIO[entry]}")
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        links.update(urldefrag(h)[0] for h in hrefs if urlparse(h).netloc == urlparse(base).netloc)
        page.screenshot(
            path=str(SCREENSHOTS / f"{Path(entry).name}.png"), full_page=entry == "index"
        )
        problems += [f"{entry}: {e}" for e in errors]
        page.close()
    for link in sorted(links):
        code = _status(link)
        if code != 200:
            problems.append(f"broken internal link {link}: HTTP {code}")
    context.close()
    assert not problems, "\n".join(problems)
    assert (SCREENSHOTS / "index.png").is_file()


# --- the pages as readers use them (issue 15) ------------------------------------------------

PLUMBING = (
    "from myst_nb import glue",  # glue calls feed the prose; their cells are hidden or removed
    "glue(",
    "from paperlib.config import load_profile",  # the chapters' setup and import cells
    "google.colab",  # the Colab setup cell
    "# Parameters",  # papermill's injected-parameters cell
    'profile = "smoke"',
)
OVERFLOWING_TABLES_JS = """() => {
  const article = document.querySelector('article.bd-article');
  const style = getComputedStyle(article);
  const right = article.getBoundingClientRect().right - parseFloat(style.paddingRight);
  const bad = [];
  for (const table of article.querySelectorAll('table')) {
    const box = table.getBoundingClientRect();
    if (box.width > 0 && box.right > right + 1) {
      bad.push(`table ${Math.round(box.width)} px wide ends ${Math.round(box.right - right)} px past the column: ${table.innerText.slice(0, 60)}`);
    }
  }
  for (const box of article.querySelectorAll('.cell_output, .output, .pst-scrollable-table-container')) {
    if (box.querySelector('table') && box.scrollWidth > box.clientWidth + 1) {
      bad.push(`a table scrolls sideways in its box (${box.scrollWidth} > ${box.clientWidth} px)`);
    }
  }
  return bad;
}"""


def _chapters(book) -> list[str]:
    """Toc entries of the executed chapters (the notebooks)."""
    from paperlib.book.toc import resolve_entry

    return [e for e in book.entries if resolve_entry(book.layout.source, e).suffix == ".ipynb"]


def _seconds(text: str) -> float:
    """``14.2 s`` or ``5 min 48 s`` -> seconds."""
    match = re.match(r"(?:(\d+) min )?([\d.]+) s", text)
    assert match, text
    return 60 * int(match[1] or 0) + float(match[2])


def test_launch_buttons_open_each_chapter_of_the_built_fork_and_commit(site, browser) -> None:
    from book_build_helpers import LAUNCH

    base, book = site
    owner, name = LAUNCH.url.removeprefix("https://github.com/").split("/")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    for entry in _chapters(book):
        page.goto(urljoin(base, f"{entry}.html"), wait_until="load")
        page.locator('button[aria-label="Launch interactive content"]').click()
        links = page.locator(".dropdown-launch-buttons a")
        shown = {links.nth(i).inner_text().strip(): links.nth(i).get_attribute("href")
                 for i in range(links.count()) if links.nth(i).is_visible()}  # fmt: skip
        assert shown == {
            "Binder": f"https://mybinder.org/v2/gh/{owner}/{name}/{LAUNCH.branch}"
            f"?urlpath=lab/tree/{entry}.ipynb",
            "Colab": f"https://colab.research.google.com/github/{owner}/{name}/blob/"
            f"{LAUNCH.branch}/{entry}.ipynb",
        }, entry
    context.close()
    # the notebook a reader downloads installs the library at the commit the site was built from
    with urllib.request.urlopen(urljoin(base, "_sources/chapters/03_training.ipynb")) as response:
        assert f"git+{LAUNCH.url}@{LAUNCH.branch}" in response.read().decode()


def test_pages_show_no_plumbing_and_no_table_overflows(site, browser) -> None:
    base, book = site
    status = json.loads(book.layout.status_json.read_text())
    seconds = {c["chapter"]: c["executed_seconds"] for c in status["chapters"]}
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    for entry in [*book.entries]:
        page.goto(urljoin(base, f"{entry}.html"), wait_until="load")
        problems += [f"{entry}: {p}" for p in page.evaluate(OVERFLOWING_TABLES_JS)]
        if entry not in _chapters(book):
            continue
        text = page.locator("article.bd-article").inner_text()  # only what is rendered
        problems += [f"{entry}: shows {p!r}" for p in PLUMBING if p in text]
        if text.count('profile: str = "pocket"') != 1:
            problems.append(f"{entry}: the parameters cell is not shown exactly once")
        header = page.locator(".run-cost")
        if header.count() != 1:
            problems.append(f"{entry}: {header.count()} run-cost headers")
            continue
        line = next(x for x in header.inner_text().splitlines() if "(shown here)" in x)
        measured = _seconds(line.split("(shown here):", 1)[1].strip())
        chapter = Path(entry).name
        if "smoke" not in line or abs(measured - seconds[chapter]) > 0.6:
            problems.append(f"{entry}: header {line!r}, status record {seconds[chapter]} s")
        if status["device"]["cpu"] not in line:
            problems.append(f"{entry}: header does not name the CPU: {line!r}")
    context.close()
    assert not problems, "\n".join(problems)


def test_chapters_are_numbered_once_and_in_order(site, browser) -> None:
    base, book = site
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(urljoin(base, f"{book.entries[1]}.html"), wait_until="load")
    titles = page.locator("nav.bd-docs-nav a.reference.internal").all_inner_texts()
    numbered = [t for t in titles if re.match(r"\d+\. ", t)]
    assert [int(t.split(".")[0]) for t in numbered] == list(range(1, len(numbered) + 1)), titles
    assert len(numbered) >= 6 and not [t for t in titles if re.match(r"\d+\.\s+\d+\.", t)]
    h1 = page.locator("article.bd-article h1").first.inner_text()
    assert re.match(r"1\. [^\d]", h1), h1  # the number once, from the toc
