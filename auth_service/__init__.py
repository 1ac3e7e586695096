"""The auth service: users, OAuth2 grants, JWT access tokens, refresh-token rotation, JWKS."""
