"""``mlprov keygen``."""

from __future__ import annotations

from pathlib import Path

import click

from mlprov._cli.output import echo
from mlprov.errors import InputError
from mlprov.signing import KeyType, generate_key, passphrase_from_env_or_prompt, write_key_pair

EPILOG = """\b
Examples:
  mlprov keygen --out ci.key                      # writes ci.key and ci.key.pub
  MLPROV_KEY_PASSPHRASE=... mlprov keygen --out ci.key --type ed25519
\b
Give PATH.pub to verifiers (`mlprov verify --key`, or a trust file); keep PATH secret.
"""


@click.command(epilog=EPILOG)
@click.option("--out", "out", required=True, metavar="PATH",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Private key path; the public key goes to PATH.pub.")
@click.option("--type", "key_type", type=click.Choice([t.value for t in KeyType]),
              default=KeyType.ECDSA_P256.value, show_default=True,
              help="Key algorithm (ecdsa keys also work with model_signing).")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen(out: Path, key_type: str, force: bool) -> None:
    """Make a signing key pair: PATH (private, mode 0600) and PATH.pub.

    The private key is encrypted when a passphrase is given in
    MLPROV_KEY_PASSPHRASE or typed at the prompt (on a terminal).
    """
    if not force:
        # Refuse before asking for a passphrase, not after.
        for path in (out, out.with_name(out.name + ".pub")):
            if path.exists():
                raise InputError(f"refusing to overwrite {path}",
                                 hint="pass --force to replace it, or choose another --out")
    passphrase = passphrase_from_env_or_prompt(out, confirm=True)
    private, public = write_key_pair(generate_key(KeyType(key_type)), out, passphrase,
                                     overwrite=force)
    echo(str(public))
    echo(f"wrote {private} ({'encrypted' if passphrase else 'unencrypted'}, mode 0600) "
               f"and {public}", err=True)
