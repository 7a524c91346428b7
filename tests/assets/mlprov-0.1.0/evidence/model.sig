{
  "dsseEnvelope": {
    "payload": "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCJwcmVkaWNhdGUiOnsicmVzb3VyY2VzIjpbeyJhbGdvcml0aG0iOiJzaGEyNTYiLCJkaWdlc3QiOiIxNjMyZDBjM2U5YjU0NDIwZmYyMDQ2NzhjNjJlMTRiZTExZjNjMmJlNjA4MDMzNTU4Mzk5MmFiOWY4Nzg1YzRlIiwibmFtZSI6ImNvbmZpZy5qc29uIn0seyJhbGdvcml0aG0iOiJzaGEyNTYiLCJkaWdlc3QiOiJjYjgxYjhkMDExYWYyMzljNDNlOTM1MzQ4OTM1MWU3Y2U1YjhiMzcyNmFmMjlkODc0M2ZmYzFiNzRiYWE4MjgzIiwibmFtZSI6InRva2VuaXplci92b2NhYi50eHQifSx7ImFsZ29yaXRobSI6InNoYTI1NiIsImRpZ2VzdCI6ImMzNjlmODVkZTczZWNiZGIzYzM4YTEwNmVkYTYyMDExYTM4NDBhZjU4NWUzNjZjZmZhMTFlYzMyNGYwY2MzN2MiLCJuYW1lIjoid2VpZ2h0cy5iaW4ifV0sInNlcmlhbGl6YXRpb24iOnsiYWxsb3dfc3ltbGlua3MiOmZhbHNlLCJoYXNoX3R5cGUiOiJzaGEyNTYiLCJpZ25vcmVfcGF0aHMiOlsiLmdpdCIsIi5naXRhdHRyaWJ1dGVzIiwiLmdpdGh1YiIsIi5naXRpZ25vcmUiXSwibWV0aG9kIjoiZmlsZXMifX0sInByZWRpY2F0ZVR5cGUiOiJodHRwczovL21vZGVsX3NpZ25pbmcvc2lnbmF0dXJlL3YxLjAiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiZDE2NmZjMzc1Y2U4NjAyN2EyODEyZTVkOWY3MWU0ZDVhMmUwNjAwNmJhODBiNGFhYmQyZDhhMWM1Y2EwZmE5YyJ9LCJuYW1lIjoibW9kZWwifV19",
    "payloadType": "application/vnd.in-toto+json",
    "signatures": [
      {
        "keyid": "32898a20c09fabaeb804c74f70e384d375cb59a9526efb9b333def6a156d005b",
        "sig": "MEUCIDfBxCIXwMFrn278fGpGH4bUmpLRvaMC/dY98dha0O9mAiEA9Q0YD9LrQhFC7J7HVz0boNZxQgo1dUU12xUubgBT5n0="
      }
    ]
  },
  "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
  "verificationMaterial": {
    "publicKey": {
      "hint": "32898a20c09fabaeb804c74f70e384d375cb59a9526efb9b333def6a156d005b"
    },
    "tlogEntries": []
  }
}
