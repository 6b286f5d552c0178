"""Verifiable history: an RFC 6962 Merkle log over the stored events (issue 11).

The package holds everything that does not touch a store's append path, one job per module:

- `merkle`: hashes, roots, inclusion and consistency proofs and their verification (RFC 6962/9162)
- `frontier`: the O(log n) compact range that extends the root as leaves are appended
- `treefile`: leaf and subtree hashes persisted beside the data, so proofs at 10M leaves take
  microseconds to milliseconds
- `canonical`: the versioned byte form of an event and its leaf hash, computed column-wise
- `note`: C2SP signed notes with Ed25519 (keys, vkeys, signing, verification)
- `checkpoint`: C2SP tlog-checkpoint, and a signer that refuses an inconsistent checkpoint
- `proofs`: text forms of inclusion (C2SP tlog-proof) and consistency proofs
- `completeness`: per-session `session_seq` gaps, conflicts and session ends (Arrow/DuckDB)
- `verify`: offline verification of an export or archive against a signed checkpoint
- `log`: the integration facade a store calls at commit and the HTTP routes call for proofs
"""
