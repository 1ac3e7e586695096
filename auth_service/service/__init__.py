"""Use cases: each opens a unit of work, applies the rules, commits. Repositories are Protocols here."""
