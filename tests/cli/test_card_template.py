"""``mlprov attest --card-template`` and ``mlprov card --card-template`` (issue 11 item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from tests.cli.conftest import COMMIT, assert_error

TEMPLATE = """\
---
{{ card_data }}
---

# {{ model_id }}

{{ card.description | default("no description", true) }}
{% for key, value in hyperparameters.items() %}- {{ key }}: {{ value }}
{% endfor %}Identity: {{ identity }}
"""


def _attest(run_cli, model: Path, key: Path, out: Path, *extra: str):
    return run_cli("attest", str(model), "--name", "credit-risk", "--key", str(key), "--out",
                   str(out), "--commit", COMMIT, *extra)


@pytest.mark.parametrize("with_card", [True, False])
def test_attest_signs_the_rendered_template(with_card, run_cli, make_key, model_dir, tmp_path,
                                            verify_cli, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    key = make_key("ci")
    template = tmp_path / "TEMPLATE.md"
    template.write_text(TEMPLATE)
    config = tmp_path / "train.yaml"
    config.write_text("lr: 0.001\nepochs: 3\n")
    card = tmp_path / "card.yaml"
    card.write_text("description: Scores loans.\nlicense: mit\n")
    out = tmp_path / "evidence"
    r = _attest(run_cli, model_dir, key.private, out, "--config", str(config),
                "--card-template", str(template), *(["--card", str(card)] if with_card else []))
    assert r.exit_code == 0, r.stderr
    text = (out / "MODEL_CARD.md").read_text()
    assert "# credit-risk\n" in text and "- lr: 0.001\n- epochs: 3\n" in text.replace(
        "- epochs: 3\n- lr: 0.001\n", "- lr: 0.001\n- epochs: 3\n")
    assert "Identity: mlid:sha256:" in text
    assert ("Scores loans." in text) == with_card
    assert ModelCard(text).data.license == ("mit" if with_card else None)
    r = verify_cli(model_dir, out, "--key", str(key.public))
    assert r.exit_code == 0, r.stderr
    r = run_cli("card", str(out), "--key", str(key.public), "--card-template", str(template))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == text  # re-rendered from verified evidence: the signed bytes
    (out / "MODEL_CARD.md").write_text(text + "edited\n")
    r = verify_cli(model_dir, out, "--key", str(key.public))
    assert r.exit_code == 1
    assert "MODEL_CARD.md does not match the digest the signed SBOM records" in r.stderr


@pytest.mark.parametrize(("text", "needles"), [
    ("# {{ model_id }\n", ["TEMPLATE.md, line 1", "unexpected '}'"]),
    ("{{ nmae }}\n", ["TEMPLATE.md, line 1", "'nmae' is undefined", "docs/sbom-eval-card.md"]),
    ("{{ ''.__class__.__mro__ }}\n", ["refused by the sandbox", "__class__"]),
])
def test_a_bad_template_is_one_line_and_writes_nothing(text, needles, run_cli, make_key,
                                                       model_dir, tmp_path):
    key = make_key("ci")
    template = tmp_path / "TEMPLATE.md"
    template.write_text(text)
    out = tmp_path / "evidence"
    r = _attest(run_cli, model_dir, key.private, out, "--card-template", str(template))
    assert_error(r, 3, "card template", *needles)
    assert not out.exists()


def test_a_missing_template_is_a_usage_error(run_cli, make_key, model_dir, tmp_path):
    key = make_key("ci")
    r = _attest(run_cli, model_dir, key.private, tmp_path / "ev", "--card-template",
                str(tmp_path / "nope.md"))
    assert_error(r, 2, "--card-template", "nope.md")
