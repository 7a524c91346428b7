"""The read-only web UI, in headless Chromium: same tokens, no external assets, no XSS."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from urllib.parse import quote

import pytest

from tests.server.test_auth import request

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str, tmp_path) -> str:
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("CI needs Chromium for the web UI tests (.ci/run installs it)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    result = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}",
         "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_ui_files_hold_no_data_and_forbid_everything_else(served):
    status, headers, body = request(served.url, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert b"<script src=\"/ui/app.js\"" in body and b"http" not in body.split(b"<body>")[0]
    status, headers, script = request(served.url, "GET", "/ui/app.js")
    assert status == 200 and b"innerHTML" not in script and b"eval(" not in script
    assert re.search(rb"https?://", script) is None  # no external assets


def test_the_ui_in_chromium(served, make_model, tmp_path):
    m = make_model()
    hostile = '<img src=x onerror="document.title=1">'
    served.client("registrar").register(m.model, evidence=m.evidence, reason=hostile)
    dom = dump_dom(served.url + "/", tmp_path)
    assert 'id="login"' in dom and "credit-risk" not in dom
    token = quote(served.tokens["reader"], safe="")
    dom = dump_dom(f"{served.url}/#token={token}", tmp_path)
    assert "signed in as reader-user" in dom and "credit-risk" in dom
    dom = dump_dom(f"{served.url}/#token={token}&next=/models/credit-risk", tmp_path)
    assert "Versions" in dom and m.model.name  # the model's page
    assert re.search(r"sha256:[0-9a-f]{64}", dom)
    dom = dump_dom(f"{served.url}/#token={token}&next=/audit", tmp_path)
    assert "model.register" in dom and "registrar-user" in dom
    assert "&lt;img src=x" in dom and "<img" not in dom
    dom = dump_dom(f"{served.url}/#token=mlpt_nope", tmp_path)
    assert 'id="login"' in dom and "Not signed in" in dom
