"""Events and hooks: an outbox written with each change, delivered after commit.

Webhooks go to a local HTTP server on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from mlprov.registry import PolicyDeniedError
from mlprov.registry._hooks import backoff, sign_webhook, verify_webhook

SECRET = "s3cret-for-tests"


class Receiver:
    """A webhook receiver on 127.0.0.1 that can be told to fail."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def configure(registry, tmp_path: Path, hooks: str, deliver: str = "after-commit") -> None:
    config = tmp_path / "mlprov.toml"
    base = registry.config_text()
    base = base.replace('deliver = "after-commit"', f'deliver = "{deliver}"')
    config.write_text(base + "\n" + hooks)
    registry.set_config(config, reason="hooks")


def test_every_change_is_an_event(registry, make_model):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    registry.promote("credit-risk", 1, to="Staging", reason="ok")
    with pytest.raises(PolicyDeniedError):
        registry.set_alias("credit-risk", "production", 1, reason="no review")
    events = registry.events()
    assert [e["kind"] for e in events] == ["registry.init", "model.register",
                                           "stage.transition", "change.denied"]
    assert [e["id"] for e in events] == [1, 2, 3, 4]
    assert events[2]["details"]["to"] == "Staging" and events[2]["accepted"] is True
    assert events[3]["change"] == "alias.set" and events[3]["accepted"] is False
    assert all(e["schema"] == "https://mlprov.dev/schemas/event/v1" for e in events)
    assert [e["id"] for e in registry.events(since=2)] == [3, 4]


def test_webhook_is_signed_and_delivered_after_commit(registry, make_model, receiver,
                                                      tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    configure(registry, tmp_path, f'[[hooks]]\nname = "web"\nevents = ["stage.transition"]\n'
                                  f'url = "{receiver.url}"\nsecret_env = "HOOK_SECRET"\n')
    m = make_model()
    registry.register(m.model, evidence=m.evidence)  # not subscribed
    registry.promote("credit-risk", 1, to="Staging", reason="ok")
    [(headers, body)] = receiver.requests
    assert headers["X-Mlprov-Event"] == "stage.transition"
    assert verify_webhook(SECRET.encode(), body, headers["X-Mlprov-Signature"])
    assert not verify_webhook(b"wrong", body, headers["X-Mlprov-Signature"])
    assert not verify_webhook(SECRET.encode(), body + b" ", headers["X-Mlprov-Signature"])
    event = json.loads(body)
    assert (event["kind"], event["name"], event["version"]) == ("stage.transition",
                                                                "credit-risk", 1)
    [delivered] = [e for e in registry.events() if e["kind"] == "stage.transition"]
    assert delivered["deliveries"] == [{"hook": "web", "state": "delivered", "attempts": 1,
                                        "lastError": None}]


def test_failing_hook_never_blocks_and_is_retried(registry, make_model, receiver, tmp_path,
                                                  monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    configure(registry, tmp_path, f'[[hooks]]\nname = "web"\nevents = ["*"]\n'
                                  f'url = "{receiver.url}"\nsecret_env = "HOOK_SECRET"\n')
    receiver.status = 500
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    assert registry.promote("credit-risk", 1, to="Staging", reason="ok").allowed
    assert registry.get_version("credit-risk", 1).stage.value == "Staging"
    pending = next(e for e in registry.events() if e["kind"] == "stage.transition")
    assert pending["deliveries"][0]["state"] == "pending"
    assert "HTTP 500" in pending["deliveries"][0]["lastError"]
    # Not due yet (backoff), then due: the receiver is back up.
    receiver.status = 200
    report = registry.deliver_events(now=time.time() + 3600)
    assert report.delivered >= 2 and report.failed == 0
    states = {d["state"] for e in registry.events() for d in e["deliveries"]}
    assert states == {"delivered"}
    assert registry.verify_audit().ok


def test_unreachable_hook_fails_after_max_attempts(registry, make_model, tmp_path,
                                                   monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    configure(registry, tmp_path, '[[hooks]]\nname = "down"\nevents = ["model.register"]\n'
                                  'url = "http://127.0.0.1:9/nothing"\n'
                                  'secret_env = "HOOK_SECRET"\ntimeout = 1\n', deliver="manual")
    config = registry.config_text().replace("max_attempts = 8",
                                                                 "max_attempts = 2")
    (tmp_path / "two.toml").write_text(config)
    registry.set_config(tmp_path / "two.toml", reason="two attempts")
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    first = registry.deliver_events(now=time.time())
    assert (first.delivered, first.retrying) == (0, 1)
    assert "cannot reach" in first.errors[0]
    second = registry.deliver_events(now=time.time() + 3600)
    assert second.failed == 1
    assert registry.deliver_events(now=time.time() + 7200).failed == 0  # given up


def test_command_hook_gets_the_event_on_stdin(registry, make_model, tmp_path):
    out = tmp_path / "events.jsonl"
    script = tmp_path / "hook.py"
    script.write_text("import os, sys\n"
                      f"open({str(out)!r}, 'a').write(os.environ['MLPROV_EVENT_KIND'] + ' ' + "
                      "sys.stdin.read() + '\\n')\n")
    configure(registry, tmp_path, f'[[hooks]]\nname = "log"\nevents = ["*"]\n'
                                  f'command = ["{sys.executable}", "{script}"]\n')
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    kind, body = out.read_text().splitlines()[-1].split(" ", 1)
    assert kind == "model.register" and json.loads(body)["version"] == 1


def test_failing_command_hook_is_recorded(registry, make_model, tmp_path):
    configure(registry, tmp_path, f'[[hooks]]\nname = "bad"\nevents = ["*"]\n'
                                  f'command = ["{sys.executable}", "-c", '
                                  f'"import sys; sys.exit(3)"]\n')
    m = make_model()
    assert registry.register(m.model, evidence=m.evidence).created
    [event] = [e for e in registry.events() if e["kind"] == "model.register"]
    assert "command exited 3" in event["deliveries"][0]["lastError"]


def test_missing_secret_is_not_sent_unsigned(registry, make_model, receiver, tmp_path,
                                             monkeypatch):
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    configure(registry, tmp_path, f'[[hooks]]\nname = "web"\nevents = ["*"]\n'
                                  f'url = "{receiver.url}"\nsecret_env = "HOOK_SECRET"\n')
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    assert receiver.requests == []


def test_signature_helpers():
    header = sign_webhook(b"k", b"{}", 1000)
    assert verify_webhook(b"k", b"{}", header, now=1100)
    assert not verify_webhook(b"k", b"{}", header, now=5000)  # too old: replay
    assert not verify_webhook(b"k", b"{}", "garbage")
    assert [backoff(n) for n in (1, 2, 3, 20)] == [1.0, 2.0, 4.0, 3600.0]
