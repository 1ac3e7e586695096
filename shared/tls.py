"""TLS and mutual TLS credentials for Tessera servers and for the channels that call them.

Files are PEM. A server with a client CA requires every client to present a certificate that CA signed
(mTLS); a channel with a certificate and key presents them to such a server.
"""

from __future__ import annotations

from pathlib import Path

import grpc


class TlsConfigurationError(ValueError):
    """TLS files were given in a combination that cannot work (a key without a certificate, ...)."""


def _read(path: Path | str) -> bytes:
    return Path(path).read_bytes()


def server_credentials(
    cert_file: Path | str, key_file: Path | str, client_ca_file: Path | str | None = None
) -> grpc.ServerCredentials:
    """Server TLS from a certificate chain and its key; client certificates required when a CA is given."""
    client_ca = _read(client_ca_file) if client_ca_file is not None else None
    return grpc.ssl_server_credentials(
        [(_read(key_file), _read(cert_file))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def channel_credentials(
    ca_file: Path | str | None,
    cert_file: Path | str | None = None,
    key_file: Path | str | None = None,
) -> grpc.ChannelCredentials:
    """Credentials for `grpc.secure_channel` / `grpc.aio.secure_channel`.

    `ca_file` verifies the server (None: the system's trusted roots); `cert_file` and `key_file`, given
    together, are the client certificate a server under mTLS asks for.
    """
    if (cert_file is None) != (key_file is None):
        raise TlsConfigurationError("a client certificate and its key must be given together")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file) if ca_file is not None else None,
        private_key=_read(key_file) if key_file is not None else None,
        certificate_chain=_read(cert_file) if cert_file is not None else None,
    )
