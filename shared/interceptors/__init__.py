"""Server and client interceptors. The server chain is declared once, in `shared.server`."""
