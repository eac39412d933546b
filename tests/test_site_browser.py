"""Headless Chromium on the smoke-built site: pages load, images show, links work, no JS errors."""

from __future__ import annotations

import functools
import http.server
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
MIN_IMAGES = {"chapters/06_interpretability": 1, "chapters/07_exercises": 2}
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
