"""Code both Tessera services use: settings, logging, database plumbing, interceptors, tokens, clients."""
