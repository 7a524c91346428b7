"""``--card-template``: render MODEL_CARD.md from a Jinja2 template, sandboxed.

Rendering follows ``huggingface_hub.ModelCard.from_template(card_data,
template_path, **kwargs)``: the template gets ``card_data``, the card's YAML
metadata as text without the ``---`` lines (``{{ card_data }}`` between two
``---`` lines makes the Hub's header), every metadata key as a variable of its
own (``license``, ``language``, ``datasets``, ``base_model``, ``tags``...), and
on top of those mlprov's facts (:data:`VARIABLES`). A template written for
``from_template``, such as the Hub's own ``modelcard_template.md``, renders.

Where mlprov differs from the Hub, on purpose (the card is signed, and a
template may come from someone else's repository):

* The template runs in Jinja2's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`:
  no attributes that start with ``_`` (``''.__class__.__mro__`` is refused), no
  unsafe callables, no changing the variables (``list.append``...); ``*`` and
  ``**`` may not build huge values; the output is capped at
  :data:`MAX_RENDERED_BYTES`. It has no clock and no randomness (``lipsum`` is
  removed), so the same facts and template give the same card.
* Printing a name that is not defined is an error (the Hub prints nothing):
  a misspelt variable must not leave an empty line in a signed card. Testing
  one is fine, as the Hub's templates do: ``{% if x %}``, ``x is defined``,
  ``x | default("...")``.
* The rendered card must begin with a YAML header that is a mapping, as the
  Hub requires; a template without one gets mlprov's header put in front.
* The template file is read bounded, like every file mlprov is given; it is
  not pinned in the evidence, but the card it renders is (its SHA-256 is in the
  signed SBOM), so that card is what verification checks.

Internal API, not covered by any compatibility promise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from mlprov import __version__
from mlprov._internal.cardfields import card_json
from mlprov._internal.readers import MAX_CARD_BYTES, load_yaml, read_text
from mlprov.card import (
    CardFacts,
    _bullets,
    _cell,
    _config_table,
    _data_table,
    _flatten,
    _line,
    card_metadata,
    metadata_yaml,
)
from mlprov.errors import InputError
from mlprov.evaluation import format_metric
from mlprov.evidence import SBOM_FILE

if TYPE_CHECKING:
    import jinja2

    from mlprov.trust import Trust

__all__ = ["MAX_RENDERED_BYTES", "VARIABLES", "CardTemplate", "load_card_template",
           "render_verified_card_with"]

#: The most bytes a rendered card may hold.
MAX_RENDERED_BYTES: Final = 16 * 1024 * 1024
#: The largest string or list ``*`` may build, and the most bits ``**`` may make.
_MAX_PRODUCT: Final = 1024 * 1024
_MAX_POWER_BITS: Final = 64 * 1024

#: The variables a template gets besides the metadata keys; each documented in
#: docs/sbom-eval-card.md ("Your own card template").
VARIABLES: Final = (
    # Hugging Face: the metadata header, as text
    "card_data",
    # mlprov's facts, from the signed statements
    "model_name", "identity", "root_digest", "code", "builder_id", "invocation_id",
    "started_on", "finished_on", "training_datasets", "config", "hyperparameters", "seeds",
    "parents", "evaluator", "metrics", "slices", "eval_datasets", "package_count",
    "package_licenses", "mlprov_version", "metadata", "card",
    # ready-made Markdown
    "model_details_table", "hyperparameters_table", "metrics_table", "slices_table",
    "training_data_table", "eval_data_table",
    # the Hub template's own names, filled from card.yaml and the evidence
    "model_id", "model_description", "developers", "model_type", "repo", "paper",
    "direct_use", "out_of_scope_use", "bias_risks_limitations", "bias_recommendations",
    "training_data", "training_regime", "testing_data", "testing_factors", "testing_metrics",
    "results", "results_summary", "software", "citation_bibtex", "citation_apa",
    "model_card_contact",
)

# The Hub's own header pattern (huggingface_hub.repocard.REGEX_YAML_BLOCK).
_YAML_BLOCK = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")


@dataclass(frozen=True)
class CardTemplate:
    """A card template, read and compiled (so a syntax error fails before hashing)."""

    path: Path
    template: jinja2.Template

    def render(self, facts: CardFacts) -> str:
        """Render the card for ``facts``.

        Raises:
            InputError: the template failed (an undefined name printed, an unsafe
                access, an error in an expression, a card too large, a bad header).
        """
        import jinja2
        from jinja2.exceptions import SecurityError

        what = f"card template {self.path}"
        variables = template_variables(facts)
        try:
            text = _bounded_join(self.template.generate(**variables), what)
        except SecurityError as exc:
            raise InputError(f"{what}: refused by the sandbox: {_one_line(exc)}",
                             hint="a card template may use its variables, not Python "
                                  "internals (see docs/sbom-eval-card.md)") from exc
        except jinja2.UndefinedError as exc:
            raise InputError(f"{what}{_line_of(exc)}: {_one_line(exc)}",
                             hint="use a variable listed in docs/sbom-eval-card.md, or "
                                  "guard it: {{ name | default('...') }}") from exc
        except jinja2.TemplateError as exc:
            raise InputError(f"{what}{_line_of(exc)}: {_one_line(exc)}",
                             hint="fix the template") from exc
        except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as exc:
            raise InputError(f"{what}{_line_of(exc)}: {type(exc).__name__}: {_one_line(exc)}",
                             hint="fix the expression in the template") from exc
        return _with_header(text, facts, what)


def load_card_template(path: Path | str) -> CardTemplate:
    """Read (bounded) and compile a ``--card-template`` file.

    Raises:
        InputError: unreadable, too large, not UTF-8, or not a valid Jinja2 template.
    """
    import jinja2

    path = Path(path)
    what = f"card template {path}"
    try:
        source = read_text(path, what="card template", limit=MAX_CARD_BYTES)
    except FileNotFoundError as exc:
        raise InputError(f"{what} does not exist") from exc
    except OSError as exc:  # not expected: read_text wraps the rest
        raise InputError(f"cannot read {what}: {exc.strerror}") from exc
    try:
        template = _environment().from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(f"{what}, line {exc.lineno}: {_one_line(exc.message or exc)}",
                         hint="fix the Jinja2 syntax (https://jinja.palletsprojects.com/"
                              "en/stable/templates/)") from exc
    except RecursionError as exc:
        raise InputError(f"{what}: nested too deeply", hint="fix the template") from exc
    return CardTemplate(path=path, template=template)


def _environment() -> jinja2.Environment:
    from jinja2 import StrictUndefined, Undefined
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Undefined(Undefined):
        """Falsy and testable like the Hub's, but an error when printed (StrictUndefined)."""

        __str__ = StrictUndefined.__str__

    class _Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(("*", "**"))

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "*":
                for value, times in ((left, right), (right, left)):
                    if (isinstance(value, (str, list, tuple)) and isinstance(times, int)
                            and len(value) * times > _MAX_PRODUCT):
                        raise SecurityError(f"'*' would build more than {_MAX_PRODUCT} items")
            elif (isinstance(left, int) and isinstance(right, int)
                  and left.bit_length() * right > _MAX_POWER_BITS):
                raise SecurityError(f"'**' would build a number over {_MAX_POWER_BITS} bits")
            return super().call_binop(context, operator, left, right)

    # Jinja's defaults (as jinja2.Template, which the Hub uses) but the undefined
    # rule, and the file's last newline kept: the card ends as the template does.
    env = _Sandbox(undefined=_Undefined, autoescape=False, keep_trailing_newline=True)
    env.globals.pop("lipsum", None)  # random text: a card must be reproducible
    return env


def _bounded_join(chunks: Any, what: str) -> str:
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RENDERED_BYTES:
            raise InputError(f"{what}: the rendered card is larger than {MAX_RENDERED_BYTES} "
                             "characters", hint="fix the template's loops")
        parts.append(chunk)
    return "".join(parts)


def _with_header(text: str, facts: CardFacts, what: str) -> str:
    """The card with a YAML mapping header: the template's, else mlprov's in front."""
    match = _YAML_BLOCK.search(text)
    if match is None:
        return f"---\n{metadata_yaml(facts)}\n---\n\n{text}"
    header = load_yaml(match.group(2), what=f"{what}: the rendered card's YAML header")
    if header is not None and not isinstance(header, dict):
        raise InputError(f"{what}: the rendered card's YAML header is not a mapping",
                         hint="start the template with ---, {{ card_data }}, --- as the "
                              "Hub's does")
    return text


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())


def _line_of(exc: BaseException) -> str:
    """`, line N` of the template, from the traceback Jinja rewrites to point into it."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f", line {line}" if line else ""


# ---------------------------------------------------------------------------
# The variables
# ---------------------------------------------------------------------------


def template_variables(facts: CardFacts) -> dict[str, Any]:
    """The variables a template renders with (the Hub's convention, then mlprov's)."""
    prov, card, evaluation = facts.provenance, facts.card, facts.evaluation
    metadata = card_metadata(facts)
    code = prov.inputs.code
    training = [{"name": d.name, "digest": f"sha256:{d.sha256}", "uri": d.uri}
                for d in prov.inputs.data]
    eval_data = ([{"name": d.name, "digest": f"sha256:{d.sha256}", "uri": d.uri}
                  for d in evaluation.datasets] if evaluation else [])
    hyperparameters = {key: value for key, value in _flatten(prov.inputs.config) if key}
    metrics = dict(sorted(evaluation.metrics.items())) if evaluation else {}
    slices = ({name: dict(sorted(values.items()))
               for name, values in sorted(evaluation.slices.items())} if evaluation else {})
    hyper_table = "\n".join(_config_table(prov.inputs.config, prov.inputs.seeds))
    training_table = "\n".join(_data_table([(d.name, d.sha256, d.uri) for d in prov.inputs.data])
                               ) if prov.inputs.data else ""
    eval_table = "\n".join(_data_table([(d.name, d.sha256, d.uri) for d in evaluation.datasets])
                           ) if evaluation and evaluation.datasets else ""
    metrics_table = "\n".join(["| metric | value |", "| --- | --- |",
                               *[f"| {_cell(n)} | {format_metric(v)} |"
                                 for n, v in metrics.items()]]) if metrics else ""
    slices_table = "\n".join(["| slice | metric | value |", "| --- | --- | --- |",
                              *[f"| {_cell(s)} | {_cell(n)} | {format_metric(v)} |"
                                for s, values in slices.items() for n, v in values.items()]]
                             ) if slices else ""
    details = [("Name", prov.name), ("Version identity", f"`{prov.identity}`"),
               ("Root digest", f"`sha256:{facts.root_digest}`"),
               ("Training code", (f"`{code.uri}` at " if code.uri else "")
                + f"commit `{code.commit}`"), ("Builder", f"`{prov.builder_id}`")]
    citation = card.citation or ""
    variables: dict[str, Any] = {
        # the Hub's from_template: the header's keys, then card_data as YAML text
        **metadata,
        "card_data": metadata_yaml(facts),
        "metadata": metadata,
        # mlprov's facts
        "model_name": prov.name,
        "identity": prov.identity,
        "root_digest": f"sha256:{facts.root_digest}",
        "code": {"uri": code.uri, "commit": code.commit, "dirty": code.dirty},
        "builder_id": prov.builder_id,
        "invocation_id": prov.invocation_id,
        "started_on": prov.started_on,
        "finished_on": prov.finished_on,
        "training_datasets": training,
        "config": prov.inputs.config,
        "hyperparameters": hyperparameters,
        "seeds": dict(sorted(prov.inputs.seeds.items())),
        "parents": [{"role": p.role, "name": p.name,
                     "digest": f"sha256:{p.sha256}" if p.sha256 else None}
                    for p in facts.parents],
        "evaluator": evaluation.evaluator.id if evaluation else None,
        "metrics": metrics,
        "slices": slices,
        "eval_datasets": eval_data,
        "package_count": facts.package_count,
        "package_licenses": facts.licenses,
        "mlprov_version": __version__,
        "card": card_json(card),
        # ready-made Markdown
        "model_details_table": "\n".join(["| | |", "| --- | --- |",
                                          *[f"| {_cell(k)} | {_cell(v)} |" for k, v in details]]),
        "hyperparameters_table": hyper_table,
        "metrics_table": metrics_table,
        "slices_table": slices_table,
        "training_data_table": training_table,
        "eval_data_table": eval_table,
        # the Hub template's names (empty when unknown: its `default(..., true)` then shows)
        "model_id": prov.name,
        "model_description": card.description or "",
        "developers": ", ".join(card.developers),
        "model_type": card.model_architecture or card.architecture_family or card.task or "",
        "repo": code.uri or "",
        "paper": card.paper or "",
        "direct_use": _list_text(card.intended_use),
        "out_of_scope_use": _list_text(card.out_of_scope_uses),
        "bias_risks_limitations": _list_text(
            [e.name + (f" (mitigation: {e.mitigation})" if e.mitigation else "")
             for e in card.ethical_considerations]),
        "bias_recommendations": _list_text(card.caveats_and_recommendations),
        "training_data": "\n\n".join(t for t in (training_table,
                                                 card.training_data_description or "") if t),
        "training_regime": _inline(hyperparameters, prov.inputs.seeds),
        "testing_data": "\n\n".join(t for t in (eval_table,
                                                card.evaluation_data_motivation or "") if t),
        "testing_factors": _list_text(card.evaluation_factors),
        "testing_metrics": _list_text(card.performance_measures or list(metrics)),
        "results": "\n\n".join(t for t in (metrics_table, slices_table) if t),
        "results_summary": card.unitary_results or "",
        "software": f"mlprov {__version__}; {facts.package_count} Python packages in "
                    f"`{SBOM_FILE}`",
        "citation_bibtex": citation if citation.lstrip().startswith("@") else "",
        "citation_apa": "" if citation.lstrip().startswith("@") else citation,
        "model_card_contact": card.contact or "",
    }
    return variables


def _inline(hyperparameters: dict[str, Any], seeds: dict[str, int]) -> str:
    """Hyperparameters and seeds on one line (the Hub's ``- **Training regime:** ...``)."""
    parts = [f"`{key}` = `{_json(value)}`" for key, value in hyperparameters.items()]
    parts += [f"seed `{name}` = `{seed}`" for name, seed in sorted(seeds.items())]
    return _line(", ".join(parts))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True).replace("`", "'")


def _list_text(items: list[str]) -> str:
    return "\n".join(_bullets(items, "")) if items else ""


def render_verified_card_with(template: Path | str, evidence: Path | str, *,
                              trust: Trust | Path | str | None = None,
                              key: Path | str | None = None) -> str:
    """Verify ``evidence`` and re-render its card with ``template`` (``mlprov card``).

    The template is read and checked before the evidence is.

    Raises:
        InputError: the template is unreadable or fails.
        VerificationError: the evidence does not verify.
    """
    from mlprov.card import render_verified_card

    loaded = load_card_template(template)
    return render_verified_card(evidence, trust=trust, key=key, render=loaded.render)
