"""The read-only web UI, in headless Chromium: same tokens, no external assets, no XSS.

The browser is driven over the Chrome DevTools protocol (:mod:`tests.server.cdp`);
each page visited is saved as a PNG under ``$MLPROV_TEST_ARTIFACTS`` (default
``test-artifacts/ui/`` in the repository).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import string
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

import mlprov
from mlprov.card import CardInput
from mlprov.registry import PolicyDeniedError, Registry
from tests.conftest import COMMIT
from tests.policy.conftest import safetensors_file
from tests.registry.conftest import GOOD_METRICS, Attested
from tests.server.cdp import Browser
from tests.server.test_auth import request

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPO = Path(__file__).resolve().parents[2]
READY = "document.body && document.body.getAttribute('data-state') === 'ready'"
#: Markup and script in every hostile string: if any of it ran, window.__pwned is set.
HOSTILE = ('<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
           '<b>bold</b>')


def artifacts() -> Path:
    """Where screenshots go: $MLPROV_TEST_ARTIFACTS, else <repo>/test-artifacts/ui/."""
    return Path(os.environ.get("MLPROV_TEST_ARTIFACTS") or REPO / "test-artifacts" / "ui")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("CI needs Chromium for the web UI tests (.ci/run installs it)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    chromium = Browser(CHROMIUM, tmp_path / "chromium")
    try:
        yield chromium
    finally:
        chromium.close()


def visit(browser: Browser, url: str, shot: str | None = None) -> str:
    """Open ``url``, wait for the page to settle, save a screenshot; the page's text."""
    browser.goto(url, ready=READY)
    if shot is not None:
        browser.screenshot(artifacts() / f"{shot}.png")
    return browser.text("body")


def assert_inert(browser: Browser) -> None:
    """Nothing hostile ran or became markup: no flag, no script/img, only safe links."""
    assert browser.evaluate("window.__pwned === undefined")
    assert browser.count("#main script, #main img, #main iframe, #main b, #main [onerror]") == 0
    hrefs = browser.evaluate("[...document.querySelectorAll('a[href]')]"
                             ".map((a) => a.getAttribute('href'))")
    assert all(h.startswith(("#", "https://", "http://")) for h in hrefs), hrefs


def test_the_ui_files_hold_no_data_and_forbid_everything_else(served):
    status, headers, body = request(served.url, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert b"<script src=\"/ui/app.js\"" in body and b"http" not in body.split(b"<body>")[0]
    status, headers, script = request(served.url, "GET", "/ui/app.js")
    assert status == 200 and b"innerHTML" not in script and b"eval(" not in script
    assert b"insertAdjacentHTML" not in script and b"document.write" not in script
    # no external assets: the only absolute URL is SVG's XML namespace, a name, never fetched
    assert re.findall(rb"https?://[^\s\"')]+", script) == [b"http://www.w3.org/2000/svg"]


def test_the_ui_in_chromium(served, make_model, browser):
    m = make_model()
    served.client("registrar").register(m.model, evidence=m.evidence, reason=HOSTILE)
    text = visit(browser, served.url + "/", "login")
    assert browser.count("#login") == 1 and "credit-risk" not in text
    token = quote(served.tokens["reader"], safe="")
    text = visit(browser, f"{served.url}/#token={token}")
    assert "signed in as reader-user" in text and "credit-risk" in text
    text = visit(browser, f"{served.url}/#/models/credit-risk")
    assert "Versions" in text and re.search(r"sha256:[0-9a-f]{64}", text)
    text = visit(browser, f"{served.url}/#/audit")
    assert "model.register" in text and "registrar-user" in text and HOSTILE in text
    assert_inert(browser)
    browser.evaluate("sessionStorage.clear()")
    text = visit(browser, f"{served.url}/#token=mlpt_nope")
    assert browser.count("#login") == 1 and "Not signed in" in text


# --------------------------------------------------------------------------- every page


TEACHER = "sha256:" + "ab" * 32


def attest_tuned(root: Path, keys, environment_file: Path, parent: Path) -> Attested:
    """credit-risk, fine-tuned from ``parent`` (and taught by an external model), with a
    hostile card and hostile metric and slice names."""
    (root / "model").mkdir(parents=True)
    (root / "model" / "weights.safetensors").write_bytes(
        safetensors_file(random.Random(7).randbytes(4096)))
    (root / "train.csv").write_text("x,y\n1,0\n")
    metrics = {"metrics": {**GOOD_METRICS["metrics"], HOSTILE: 0.5},
               "slices": {**GOOD_METRICS["slices"], "<i>" + HOSTILE: {"auc": 0.7}}}
    (root / "metrics.json").write_text(json.dumps(metrics))
    card = CardInput(
        description=("Scores loans. " + HOSTILE + "\n\n"
                     "[click me](javascript:window.__pwned=1) "
                     "[data](data:text/html,<script>window.__pwned=1</script>) "
                     "[docs](https://example.org/docs) `<code>`"),
        intended_use=["pre-screening " + HOSTILE],
        caveats_and_recommendations=["[x](JaVaScRiPt:window.__pwned=1)"])
    mlprov.attest(root / "model", name="credit-risk", key=keys.builder, out=root / "evidence",
                  commit=COMMIT, seeds={"torch": 7}, data={"train": root / "train.csv"},
                  metrics=root / "metrics.json", eval_key=keys.evaluator,
                  environment=environment_file,
                  parents=[f"fine-tune-of={parent}", f"teacher=external:acme-teacher@{TEACHER}"],
                  parent_trust=keys.trust, card=card)
    return Attested(root / "model", root / "evidence", "credit-risk")


@pytest.fixture
def story(tmp_path, keys, environment_file, make_model, approve) -> Path:
    """A registry with a lineage, reviews, a denial, an alias moved twice, a deployment."""
    path = tmp_path / "registry"
    with Registry.init(path, trust=keys.trust) as reg:
        base = make_model("credit-risk-base")
        reg.register(base.model, evidence=base.evidence, actor="ci-bot", reason="base trained")
        tuned = attest_tuned(tmp_path / "tuned", keys, environment_file, base.evidence)
        reg.register(tuned.model, evidence=tuned.evidence, actor="ci-bot", reason=HOSTILE)
        reg.promote("credit-risk", 1, to="Staging", reason="eval passed", actor="pat")
        with pytest.raises(PolicyDeniedError):
            reg.promote("credit-risk", 1, to="Production", reason="ship it " + HOSTILE,
                        actor="pat")
        reg.add_review("credit-risk", 1, approve(tuned), actor="alice")
        reg.promote("credit-risk", 1, to="Production", reason="approved", actor="pat")
        second = make_model("credit-risk")
        reg.register(second.model, evidence=second.evidence, actor="ci-bot")
        reg.set_alias("credit-risk", "canary", 1, reason="first canary", actor="pat")
        reg.set_alias("credit-risk", "canary", 2, reason="try v2 " + HOSTILE, actor="pat")
        reg.set_alias("credit-risk", "canary", 1, reason="v2 regressed", actor="oncall")
        reg.create_deployment("scoring", ["models:/credit-risk/1"], reason="the stack",
                              actor="pat")
        reg.set_deployment_alias("scoring", "live", 1, reason="go live", actor="pat")
    return path


def test_every_page_in_chromium(serve, story, browser):
    served = serve(registry=str(story))
    url = served.url
    token = quote(served.tokens["reader"], safe="")
    text = visit(browser, f"{url}/#token={token}&next=/", "models")
    assert "credit-risk-base" in text and "@canary" in text
    assert "Production 1 \u00b7 None 1" in text  # credit-risk's versions per stage

    text = visit(browser, f"{url}/#/models/credit-risk", "model")
    assert "Versions" in text and "@canary" in text and "v2" in text

    # The version page: every fact with its check; the card rendered as inert text.
    text = visit(browser, f"{url}/#/models/credit-risk/versions/1", "version")
    for needle in ("Production", f"commit {COMMIT}", "train", "age<30", "auc", "0.91",
                   "fine-tune-of", "credit-risk-base", "alice", "approve", "looks good",
                   "CycloneDX 1.6", "numpy", "safetensors", "Key components",
                   "stage.transition", "Model card", "Intended use", "Per slice"):
        assert needle in text, needle
    assert browser.count("#main .badge.verified") >= 10
    assert browser.count("#main tr.denied") == 1  # the Production move the gate refused
    assert HOSTILE in text and "<i>" + HOSTILE in text  # metric, slice names: text
    card = browser.text("#card")
    assert "Scores loans. " + HOSTILE in card and "pre-screening " + HOSTILE in card
    assert browser.count("#card h3, #card h4, #card h5") >= 5  # headings rendered
    assert browser.count("#card table") >= 2 and browser.count("#card li") >= 2
    assert browser.count("#card code") >= 1
    links = browser.evaluate("[...document.querySelectorAll('#card a')]"
                             ".map((a) => [a.textContent, a.getAttribute('href')])")
    assert links == [["docs", "https://example.org/docs"]]
    assert browser.count("#card .inert-link") == 3  # javascript:, data:, JaVaScRiPt:
    assert "click me" in card
    assert_inert(browser)

    # The lineage graph: SVG nodes and links, each link with its verification status.
    text = visit(browser, f"{url}/#/models/credit-risk-base/versions/1/lineage", "lineage")
    assert browser.count("svg#lineage-graph g.node") == 2
    statuses = browser.evaluate("[...document.querySelectorAll('svg#lineage-graph g.edge')]"
                                ".map((g) => g.getAttribute('data-status'))")
    assert statuses == ["verified"]  # the fine-tune, a verified descendant
    assert "fine-tune-of" in browser.text("svg#lineage-graph")
    text = visit(browser, f"{url}/#/models/credit-risk/versions/1/lineage", "lineage-tuned")
    edges = browser.evaluate("[...document.querySelectorAll('svg#lineage-graph g.edge')]"
                             ".map((g) => [g.getAttribute('data-status'), g.textContent])")
    assert sorted(status for status, _ in edges) == ["unknown", "verified"]
    assert {status: "teacher" in label for status, label in edges} == {
        "unknown": True, "verified": False}  # the external teacher: pinned, not verified
    svg_text = browser.text("svg#lineage-graph")
    assert "credit-risk-base" in svg_text and "acme-teacher" in svg_text
    assert browser.count("svg#lineage-graph g.node") == 3 and "verified" in text

    # The alias's timeline: who, when, why, which decision, from -> to.
    text = visit(browser, f"{url}/#/models/credit-risk/aliases/canary", "alias-history")
    moves = browser.evaluate("[...document.querySelectorAll('#timeline .move')]"
                             ".map((m) => m.textContent)")
    assert moves == ["(new) \u2192 v1", "v1 \u2192 v2", "v2 \u2192 v1"]
    for needle in ("first canary", "try v2 " + HOSTILE, "v2 regressed", "oncall", "decision"):
        assert needle in text, needle
    assert browser.count("#timeline .digest") == 3
    assert_inert(browser)

    # The audit log: the gate's denial marked; every kind shown.
    text = visit(browser, f"{url}/#/audit", "audit")
    assert browser.count("#main tr.denied") == 1
    denied = browser.text("#main tr.denied")
    assert "stage.transition" in denied and "denied" in denied and "pat" in denied
    assert "approval" in denied  # the gate's own words, under the reason
    for kind in ("model.register", "review.add", "alias.set", "deployment.create",
                 "deployment.alias.set"):
        assert kind in text, kind
    assert_inert(browser)
    text = visit(browser, f"{url}/#/audit?denials=1", "audit-denials")
    assert browser.count("#main tr") == 2 and "ship it" in text

    # Deployments, with the deployment alias.
    text = visit(browser, f"{url}/#/deployments", "deployments")
    assert "scoring" in text
    text = visit(browser, f"{url}/#/deployments/scoring", "deployment")
    for needle in ("deployments:/scoring/1", "models:/credit-risk/1", "@live", "go live",
                   "(new) \u2192 v1"):
        assert needle in text, needle
    assert_inert(browser)
    assert len(list(artifacts().glob("*.png"))) >= 10


def test_the_version_endpoints_answer_only_readable_names(serve, story):
    from mlprov.server import ServerConfig

    served = serve(ServerConfig({"roles": {"tuner": {"read": ["credit-risk"]}}}),
                   registry=str(story))
    tuner = served.token("tuner-user", "tuner")
    auth = {"Authorization": f"Bearer {tuner}"}
    status, _, data = request(served.url, "GET", "/api/v1/models/credit-risk/versions/1",
                              auth)
    assert status == 200, data
    shown = json.loads(data)
    assert shown["schema"] == "https://mlprov.dev/schemas/registry-version/v1"
    assert shown["parents"][0]["name"] == "credit-risk-base"
    assert shown["parents"][0]["registered"] == []  # not readable: not listed
    assert shown["sbom"]["components"] >= 3 and shown["sbom"]["keyComponents"]
    status, _, data = request(served.url, "GET", "/api/v1/models/credit-risk/versions/1/card",
                              auth)
    assert status == 200 and json.loads(data)["markdown"].startswith("---\n")
    status, _, data = request(served.url, "GET",
                              "/api/v1/models/credit-risk/versions/1/lineage", auth)
    assert status == 200 and json.loads(data)["status"] == "verified"
    for path in ("/api/v1/models/credit-risk-base/versions/1",
                 "/api/v1/models/credit-risk-base/versions/1/lineage?descendants=true",
                 "/api/v1/deployments/scoring"):
        status, _, data = request(served.url, "GET", path, auth)
        assert status == 403, (path, data)
    reader = {"Authorization": f"Bearer {served.tokens['reader']}"}
    status, _, data = request(served.url, "GET", "/api/v1/deployments/scoring", reader)
    assert status == 200
    [shown_deployment] = json.loads(data)["deployments"]
    assert shown_deployment["aliases"] == ["live"]


# --------------------------------------------------------------------------- the Markdown


MARKDOWN_PIECES = ["# ", "## ", "- ", "1. ", "> ", "| a | b |\n| --- | --- |\n| ", "```\n",
                   "---\n", "`", "**", "_", "*", "[", "](", ")", "\\", "|", "\n", "\n\n", " ",
                   "javascript:", "JaVaScRiPt:", "data:text/html,", "https://example.org/",
                   "http://x/", "vbscript:", "//evil.example/", "&#x6a;avascript:", "<script>",
                   "</script>", "<img src=x onerror=window.__pwned=1>", "onerror=", '"', "'",
                   "window.__pwned=1", "<a href='javascript:window.__pwned=1'>", "text"]
ALLOWED_TAGS = {"DETAILS", "SUMMARY", "PRE", "CODE", "P", "H3", "H4", "H5", "H6", "HR", "TABLE",
                "TR", "TH", "TD", "UL", "OL", "LI", "BLOCKQUOTE", "A", "SPAN", "STRONG", "EM"}


def test_any_markdown_renders_to_safe_elements(served, browser):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    visit(browser, served.url + "/")  # the login page: the script is loaded
    check = """((source) => {
      const box = document.createElement("div");
      box.appendChild(window.mlprovUi.markdown(source));
      const all = [...box.querySelectorAll("*")];
      return {tags: [...new Set(all.map((e) => e.tagName))],
              hrefs: [...box.querySelectorAll("a")].map((a) => a.getAttribute("href")),
              attrs: [...new Set(all.flatMap((e) => [...e.attributes].map((a) => a.name)))],
              text: box.textContent};
    })"""

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.sampled_from(MARKDOWN_PIECES) | st.text(string.printable, max_size=8),
                    max_size=40))
    def render(pieces: list[str]) -> None:
        source = "".join(pieces)
        out = browser.evaluate(f"{check}({json.dumps(source)})")
        assert set(out["tags"]) <= ALLOWED_TAGS, out["tags"]
        assert all(h.startswith(("https://", "http://")) for h in out["hrefs"]), out["hrefs"]
        assert set(out["attrs"]) <= {"href", "rel", "referrerpolicy", "class", "title"}
        # Markup stays text: each occurrence survives, except where Markdown drops text
        # (a code fence's own line, a link's URL).
        kept = "\n".join(line for line in source.replace("\r", "\n").split("\n")
                         if not line.strip().startswith(("```", "~~~")))
        kept = re.sub(r"\]\([^()\s]*\)", "]", kept)
        for word in ("<script>", "onerror="):
            assert out["text"].count(word) >= kept.count(word), (word, source, out["text"])

    render()
    assert browser.evaluate("window.__pwned === undefined")


def test_a_version_that_does_not_verify_shows_no_facts(serve, story, browser):
    from tests.registry.stored import tamper_blob

    with Registry.open(story) as reg:
        facts = reg.verify_version("credit-risk", 1)
        tamper_blob(reg, facts.evidence["eval.sigstore.json"],
                    lambda data: data.replace(b'"payload"', b'"payloaD"'))
    served = serve(registry=str(story))
    token = quote(served.tokens["reader"], safe="")
    visit(browser, f"{served.url}/#token={token}&next=/models/credit-risk/versions/1",
          "version-tampered")
    assert browser.count("#error") == 1 and "credit-risk v1" in browser.text("#error")
    assert browser.count("#main h3") == 0 and browser.count("#main .badge.verified") == 0
    visit(browser, f"{served.url}/#/models/credit-risk-base/versions/1/lineage",
          "lineage-tampered-child")
    edge = browser.evaluate("[...document.querySelectorAll('svg#lineage-graph g.edge')]"
                            ".map((g) => [g.getAttribute('data-status'), g.textContent])")
    assert [status for status, _ in edge] == ["failed"] and "fine-tune-of" in edge[0][1]
