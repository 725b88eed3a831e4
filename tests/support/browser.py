"""Debian's Chromium, headless, driven by Playwright, trusting one test server's certificate.

Playwright's own browser download needs the network, so the system's `chromium` (Debian's
package; `./dev test` installs it where missing) is launched instead. The browser trusts
the test server by pinning its certificate's public key
(`--ignore-certificate-errors-spki-list`), not by ignoring certificate errors: any other
certificate still fails, as it would for an operator.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

__all__ = ["DESKTOP", "PHONE", "Chromium", "chromium", "chromium_path", "spki_pin"]

DESKTOP = {"width": 1280, "height": 860}
"""A laptop's browser window."""
PHONE = {"width": 375, "height": 740}
"""A phone's screen in CSS pixels (iPhone SE to 13 mini)."""


def chromium_path() -> str:
    """Where Debian's Chromium is; RuntimeError saying how to install it when it is not."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("no chromium on PATH: `sudo apt-get install chromium` (./dev test does)")
    return found


def spki_pin(cert_file: Path) -> str:
    """Base64 SHA-256 of the public key of the first certificate in `cert_file` (Chromium's
    pin format)."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@dataclass
class Chromium:
    """A running headless Chromium; pages it opens record what their consoles complain of."""

    browser: Browser
    complaints: list[str] = field(default_factory=list)
    """Console errors and warnings (a script error, a Content-Security-Policy violation)."""

    def context(self, viewport: dict[str, int] | None = None) -> BrowserContext:
        """A fresh profile (no cookies) with a window of `viewport` (DESKTOP by default)."""
        context = self.browser.new_context(
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]  # a dict of width, height
            device_scale_factor=1,
            locale="en-GB",
            timezone_id="UTC",
        )
        context.set_default_timeout(10_000)
        context.on("page", self._watch)
        return context

    def page(self, viewport: dict[str, int] | None = None) -> Page:
        """A page in a fresh context."""
        return self.context(viewport).new_page()

    def _watch(self, page: Page) -> None:
        def complain(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                self.complaints.append(f"{message.type}: {message.text}")

        page.on("console", complain)
        page.on("pageerror", lambda error: self.complaints.append(f"page error: {error}"))


@contextmanager
def chromium(server_cert: Path) -> Iterator[Chromium]:
    """Headless Debian Chromium trusting `server_cert`'s key (and no other invalid one)."""
    pin = spki_pin(server_cert)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[f"--ignore-certificate-errors-spki-list={pin}"],
        )
        try:
            yield Chromium(browser)
        finally:
            browser.close()
