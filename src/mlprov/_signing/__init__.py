"""Signing backends: private and unstable. The public surface is ``mlprov.signing``.

- :mod:`.interface`: :class:`BundleSigner`, what every backend implements.
- :mod:`.key`: a local private key's signature over DSSE PAE, in a ``publicKey`` bundle.
- :mod:`.keyless`: Sigstore keyless signing (OIDC identity -> Fulcio certificate -> Rekor).
- :mod:`.verify_keyless`: verification of certificate bundles against trust-file identities.

The Sigstore modules import ``sigstore`` when first used, never at CLI start-up.
"""
