"""The errors mlprov raises, and the exit code each maps to.

Every error is one line naming the offending value (``str(error)``) plus a
``diagnostics()`` hint saying what to do next. The CLI maps them to exit codes
in one place (:mod:`mlprov._cli.main`):

====  =========================================================
code  meaning
====  =========================================================
0     ok: verified, allowed, written
1     a check said no (:class:`VerificationError` and its family)
2     usage: bad flags or arguments, a named path that does not exist (click);
      from Python, an argument of the wrong type or shape (:class:`ArgumentError`)
3     any other mlprov error: bad input, key material, I/O
4     a bug in mlprov (traceback only with ``--debug``)
====  =========================================================
"""

from __future__ import annotations

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_ERROR",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_USAGE",
    "ArgumentError",
    "BundleError",
    "DigestMismatchError",
    "IdentityError",
    "InputError",
    "KeyMaterialError",
    "LineageError",
    "MlprovError",
    "PolicyError",
    "SignatureError",
    "SigningError",
    "TrustError",
    "UnsafePathError",
    "VerificationError",
]

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_ERROR = 3
EXIT_INTERNAL = 4


def _one_line(text: str) -> str:
    """``text`` on one line: lines folded with a space, other controls escaped.

    The same folding as the CLI's stderr line, so ``str(error)`` is what it prints;
    a control character never reaches a log as itself.
    """
    if text.isprintable():
        return text  # the common case, fast
    folded = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100
                   else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"
                   for c in folded)


class MlprovError(Exception):
    """Base of every error mlprov raises on purpose.

    ``str(error)`` is always one line: a message holding a line break (a path
    or a third-party error's text) is folded onto one.
    """

    exit_code: int = EXIT_ERROR
    hint: str = "run the command again with --debug for details"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(_one_line(str(message)))
        if hint is not None:
            self.hint = _one_line(str(hint))

    def diagnostics(self) -> str:
        """Return what the user should do next."""
        return self.hint


class InputError(MlprovError):
    """A file, flag value or document given to mlprov is unusable."""

    hint = "check the path or value named in the message"


class ArgumentError(InputError):
    """A Python caller passed a value of the wrong type or shape to a public function.

    The message names the function and the argument; the hint shows a call that works.
    """

    exit_code = EXIT_USAGE
    hint = "see the function's docstring (help(mlprov.attest), ...) for what it takes"


class UnsafePathError(InputError):
    """A path escapes its root: ``..``, absolute names, symlinks leaving the tree."""

    hint = "remove the offending path or symlink; mlprov never follows a path out of the model root"


class IdentityError(InputError):
    """The version identity cannot be derived (dirty tree, no commit, bad config)."""

    hint = "commit your changes, pass --commit SHA, or pass --allow-dirty to record a dirty tree"


class KeyMaterialError(MlprovError):
    """A key cannot be read, decrypted or used."""

    hint = "check the key file and MLPROV_KEY_PASSPHRASE; `mlprov keygen` makes a new key pair"


class SigningError(MlprovError):
    """Keyless signing failed: no identity token, or Sigstore refused or was unreachable."""

    hint = ("check the identity token (or the CI job's id-token permission) and the network "
            "path to Fulcio and Rekor")


class TrustError(InputError):
    """The trust file is malformed or names unusable keys."""

    hint = "see 'Trust file' in the README for the format"


class VerificationError(MlprovError):
    """A check said no: the evidence or the artefact cannot be trusted."""

    exit_code = EXIT_CHECK_FAILED
    hint = "do not use this model; re-attest it or find out who changed it"


class BundleError(VerificationError):
    """An evidence file is not a well-formed bundle of a known kind."""

    hint = "the evidence file is corrupt or of an unknown kind; re-run `mlprov attest`"


class SignatureError(VerificationError):
    """No trusted signer with the needed role signed the payload."""

    hint = "check that the trust file names the signer's key with the needed role"


class DigestMismatchError(VerificationError):
    """Bytes on disk differ from the signed digests."""

    hint = "the model's files changed after they were attested; do not deploy them"


class LineageError(VerificationError):
    """A parent's evidence does not verify, or a link of the lineage is broken."""

    hint = ("the message names the broken link (child -> parent, role); find out who changed "
            "that parent's evidence or files")


class PolicyError(VerificationError):
    """A policy is missing, does not parse, or is not Rego v1: it cannot allow anything."""

    hint = ("fix the policy: Rego v1 syntax (`deny contains msg if { ... }`); "
            "`mlprov policy test DIR` runs its tests")
