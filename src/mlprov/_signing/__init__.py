"""Signing backends: private and unstable. The public surface is ``mlprov.signing``.

- :mod:`.interface`: the base. :class:`BundleSigner` and :class:`Signer`, what
  backends implement; :class:`PublicKey`, ``pae``; a trust's data types (roles,
  trusted keys, identity rules). Backends import it and nothing above it.
- :mod:`.key`: a local private key's signature over DSSE PAE, in a ``publicKey`` bundle.
- :mod:`.keyless`: Sigstore keyless signing (OIDC identity -> Fulcio certificate -> Rekor).
- :mod:`.verify_keyless`: verification of certificate bundles against trust-file identities.

The Sigstore modules import ``sigstore`` when first used, never at CLI start-up.
``mlprov.signing``, ``mlprov.bundles`` and ``mlprov.trust`` import these modules,
never the other way round (``tests/test_import_cycles.py`` keeps it so).
"""
