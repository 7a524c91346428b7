"""``card_template=``: a Jinja2 template renders the signed MODEL_CARD.md (issue 11 item 9)."""

from __future__ import annotations

import socket
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import ModelCard

import mlprov
from mlprov._internal import card_template
from mlprov._internal.card_template import VARIABLES, load_card_template, render_verified_card_with
from mlprov.errors import InputError
from tests.evidence_kit import Evidence, attest_full

HF_TEMPLATE = Path(huggingface_hub.__file__).parent / "templates" / "modelcard_template.md"

TEMPLATE = """\
---
{{ card_data }}
---

# {{ model_name }}

{{ card.description }}

- identity: {{ identity }}
- root: {{ root_digest }}
- licence: {{ license }}
{% for name, value in metrics.items() %}- {{ name }} = {{ value }}
{% endfor %}{% for slice, values in slices.items() %}{% for name, value in values.items() %}\
- {{ slice }}/{{ name }} = {{ value }}
{% endfor %}{% endfor %}\
{% for d in training_datasets %}- trained on {{ d.name }} {{ d.digest }}
{% endfor %}\
{% for name, seed in seeds.items() %}- seed {{ name }}={{ seed }}
{% endfor %}\
{% for use in card.out_of_scope_uses %}- not for: {{ use }}
{% endfor %}\
{% if parents %}parents: {{ parents | length }}{% endif %}
{{ hyperparameters_table }}
"""


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args, **_kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _attest(tmp_path: Path, model_dir: Path, make_key, text: str | Path, **extra) -> Evidence:
    if isinstance(text, Path):
        template = text
    else:
        template = tmp_path / "TEMPLATE.md"
        template.write_text(text)
    return attest_full(tmp_path, model_dir, make_key("ci"), make_key("qa"),
                       card_template=template, **extra)


def test_the_rendered_template_is_the_signed_card(make_key, model_dir, tmp_path, offline):
    ev = _attest(tmp_path, model_dir, make_key, TEMPLATE)
    text = ev.file("MODEL_CARD.md").read_text()
    result = mlprov.verify(ev.model, evidence=ev.evidence, trust=ev.trust)
    for needle in ("# credit-risk", "Scores loan applications for default risk.",
                   f"- identity: {result.identity}", "- root: sha256:", "- licence: apache-2.0",
                   "- auc = 0.91", "- age<30/auc = 0.88", "- trained on train sha256:" + "2" * 64,
                   "- seed torch=7", "- not for: final credit decisions without human review",
                   "| seed torch | `7` |"):
        assert needle in text, needle
    assert "Mitchell" not in text and "## Model details" not in text  # not mlprov's layout
    data = ModelCard(text).data.to_dict()  # the header {{ card_data }} made, as the Hub's
    assert data["license"] == "apache-2.0"
    assert data["mlprov"]["identity"] == result.identity
    assert result.verified
    # `mlprov card` with the same template gives the same bytes from verified evidence
    assert render_verified_card_with(tmp_path / "TEMPLATE.md", ev.evidence,
                                     trust=ev.trust) == text


def test_editing_the_rendered_card_fails_verification(make_key, model_dir, tmp_path):
    ev = _attest(tmp_path, model_dir, make_key, TEMPLATE)
    card = ev.file("MODEL_CARD.md")
    card.write_text(card.read_text().replace("- auc = 0.91", "- auc = 0.99"))
    result = mlprov.verify(ev.model, evidence=ev.evidence, trust=ev.trust)
    assert not result.verified
    [failed] = [c for c in result.checks if c.name == "card"]
    assert failed.ok is False and "MODEL_CARD.md does not match" in failed.detail


def test_the_hubs_own_template_renders(make_key, model_dir, tmp_path, offline):
    """huggingface_hub's modelcard_template.md, as ModelCard.from_template would use it."""
    ev = _attest(tmp_path, model_dir, make_key, HF_TEMPLATE,
                 config={"model": {"C": 0.5}}, params={"max_iter": 200})
    text = ev.file("MODEL_CARD.md").read_text()
    card = ModelCard.load(ev.file("MODEL_CARD.md"))
    assert card.data.license == "apache-2.0"
    assert card.data.base_model == "acme/credit-base"
    results = {(r.metric_type, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert results[("auc", "auc")] == 0.91
    for needle in ("# Model Card for credit-risk", "Scores loan applications for default risk.",
                   "- **Developed by:** ACME risk team", "- **License:** apache-2.0",
                   "- **Finetuned from model [optional]:** acme/credit-base",
                   "- final credit decisions without human review",
                   "- **Training regime:** `max_iter` = `200`, `model.C` = `0.5`, "
                   "seed `torch` = `7`", "| auc | 0.91 |", "| age<30 | auc | 0.88 |",
                   "| train | `sha256:" + "2" * 64, "[More Information Needed]"):
        assert needle in text, needle
    assert mlprov.verify(ev.model, evidence=ev.evidence, trust=ev.trust).verified


def test_the_hub_renders_a_template_alike(tmp_path, make_key, model_dir):
    """Same template, same variables: the Hub's from_template gives the same body."""
    ev = _attest(tmp_path, model_dir, make_key, TEMPLATE)
    ours = ev.file("MODEL_CARD.md").read_text()
    from mlprov.card import card_facts  # the facts of the verified evidence
    from mlprov.verification import verify

    verdict = verify(None, evidence=ev.evidence, trust=ev.trust)
    assert verdict.provenance is not None and verdict.sbom is not None
    facts = card_facts(verdict.provenance, str(verdict.root_digest).removeprefix("sha256:"),
                       verdict.evaluation, verdict.sbom)
    variables = card_template.template_variables(facts)
    assert set(variables) - set(variables["metadata"]) == set(VARIABLES)  # all documented
    card_data = huggingface_hub.ModelCardData(**{k: v for k, v in variables["metadata"].items()
                                                 if k != "model-index"})
    variables.pop("card_data")
    hub = ModelCard.from_template(card_data, template_str=TEMPLATE, **variables)
    assert hub.text.rstrip("\n") == ModelCard(ours).text.rstrip("\n")


def test_a_template_without_a_header_gets_mlprovs(make_key, model_dir, tmp_path, offline):
    ev = _attest(tmp_path, model_dir, make_key, "# {{ model_id }}\n")
    text = ev.file("MODEL_CARD.md").read_text()
    assert text.startswith("---\nlicense: apache-2.0\n")
    assert text.endswith("---\n\n# credit-risk\n")
    assert ModelCard(text).data.license == "apache-2.0"


def test_every_documented_variable_is_given(make_key, model_dir, tmp_path):
    text = "".join(f"{{% if {name} is not defined %}}MISSING {name}\n{{% endif %}}"
                   for name in VARIABLES)
    ev = _attest(tmp_path, model_dir, make_key, text + "ok\n")
    assert "MISSING" not in ev.file("MODEL_CARD.md").read_text()
    docs = (Path(__file__).parents[1] / "docs" / "sbom-eval-card.md").read_text()
    assert [name for name in VARIABLES if f"`{name}`" not in docs] == []


@pytest.mark.parametrize("text", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ metrics.update({'auc': 1}) }}",
    "{% set x = training_datasets.append(1) %}",
    "{{ 'x' * 100000000 }}",
    "{{ 10 ** 100000000 }}",
])
def test_the_sandbox_refuses(text: str, make_key, model_dir, tmp_path):
    with pytest.raises(InputError, match=r"refused by the sandbox"):
        _attest(tmp_path, model_dir, make_key, text)
    assert not (tmp_path / "evidence").exists()


@pytest.mark.parametrize(("text", "needle"), [
    ("# {{ model_nmae }}\n", r"TEMPLATE.md, line 1: 'model_nmae' is undefined"),
    ("ok\n{% for x in metrics %}\n", r"TEMPLATE.md, line 2: .*endfor"),
    ("{{ 1 / 0 }}", r"ZeroDivisionError"),
    ("---\n- a list\n---\n", r"YAML header is not a mapping"),
    ("---\n{{ card_data }}\n  bad: [\n---\n", r"not valid YAML"),
    ("{{ lipsum() }}", r"'lipsum' is undefined"),
])
def test_template_errors_are_one_line_input_errors(text, needle, make_key, model_dir, tmp_path):
    with pytest.raises(InputError, match=needle) as caught:
        _attest(tmp_path, model_dir, make_key, text)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "evidence").exists()


def test_undefined_names_may_be_tested_and_defaulted(make_key, model_dir, tmp_path):
    ev = _attest(tmp_path, model_dir, make_key,
                 "{% if nope %}x{% endif %}{{ nope | default('d', true) }}"
                 "{{ nope is defined }}{% for x in nope %}{% endfor %}\n")
    assert ev.file("MODEL_CARD.md").read_text().endswith("\n---\n\ndFalse\n")


def test_the_template_is_read_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    big = tmp_path / "big.md"
    big.write_text("x" * 100)
    monkeypatch.setattr(card_template, "MAX_CARD_BYTES", 99)
    with pytest.raises(InputError, match="too large"):
        load_card_template(big)
    with pytest.raises(InputError, match="does not exist"):
        load_card_template(tmp_path / "nope.md")
    bad = tmp_path / "bad.md"
    bad.write_bytes(b"\xff")
    with pytest.raises(InputError, match="not UTF-8"):
        load_card_template(bad)


def test_the_rendered_card_is_bounded(make_key, model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(card_template, "MAX_RENDERED_BYTES", 1000)
    with pytest.raises(InputError, match="larger than 1000"):
        _attest(tmp_path, model_dir, make_key, "{% for i in range(2000) %}x{% endfor %}")
