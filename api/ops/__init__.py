"""Operations: `framegate verify` (a deployment's health and streaming state, as checks) and
`framegate drill` (the rollback rehearsal: stream, flip the flag off, verify, flip on, verify)."""
