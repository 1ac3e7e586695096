"""`AuthClient`: the auth service (`tessera.auth.v1.AuthService`) over the generated stubs."""

from __future__ import annotations

from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from shared.client.base import ServiceClient
from shared.client.tokens import ClientCredentialsTokenSource, PasswordTokenSource


class AuthClient(ServiceClient):
    """Register, obtain and manage tokens, read the public keys and the current user.

    Methods that need a token (`get_current_user`, `change_password`, `introspect_token`) use the
    client's token source, e.g. the one `login()` sets.
    """

    SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
    STUB = auth_pb2_grpc.AuthServiceStub

    async def register(
        self, email: str, password: str, display_name: str = "", *, timeout: float | None = None
    ) -> auth_pb2.User:
        """Register a user (role `customer`)."""
        request = auth_pb2.RegisterRequest(email=email, password=password, display_name=display_name)
        return await self._call(self.stub.Register, request, timeout)

    async def token(
        self, request: auth_pb2.TokenRequest, *, timeout: float | None = None
    ) -> auth_pb2.TokenResponse:
        """Any grant, as a raw `TokenRequest` (the token sources use this)."""
        return await self._call(self.stub.Token, request, timeout)

    async def password_grant(
        self, username: str, password: str, *, scope: str = "", timeout: float | None = None
    ) -> auth_pb2.TokenResponse:
        grant = auth_pb2.PasswordGrant(username=username, password=password)
        return await self.token(auth_pb2.TokenRequest(password=grant, scope=scope), timeout=timeout)

    async def refresh_token_grant(
        self, refresh_token: str, *, scope: str = "", timeout: float | None = None
    ) -> auth_pb2.TokenResponse:
        grant = auth_pb2.RefreshTokenGrant(refresh_token=refresh_token)
        return await self.token(auth_pb2.TokenRequest(refresh_token=grant, scope=scope), timeout=timeout)

    async def client_credentials_grant(
        self, client_id: str, client_secret: str, *, scope: str = "", timeout: float | None = None
    ) -> auth_pb2.TokenResponse:
        grant = auth_pb2.ClientCredentialsGrant(client_id=client_id, client_secret=client_secret)
        return await self.token(auth_pb2.TokenRequest(client_credentials=grant, scope=scope), timeout=timeout)

    async def revoke_token(
        self, token: str, *, token_type_hint: str = "", timeout: float | None = None
    ) -> None:
        request = auth_pb2.RevokeTokenRequest(token=token, token_type_hint=token_type_hint)
        await self._call(self.stub.RevokeToken, request, timeout)

    async def introspect_token(
        self, token: str, *, timeout: float | None = None
    ) -> auth_pb2.IntrospectTokenResponse:
        """Needs a token source whose tokens carry `auth.introspect`."""
        return await self._call(
            self.stub.IntrospectToken, auth_pb2.IntrospectTokenRequest(token=token), timeout
        )

    async def get_jwks(self, *, timeout: float | None = None) -> auth_pb2.GetJwksResponse:
        return await self._call(self.stub.GetJwks, auth_pb2.GetJwksRequest(), timeout)

    async def get_current_user(self, *, timeout: float | None = None) -> auth_pb2.User:
        return await self._call(self.stub.GetCurrentUser, auth_pb2.GetCurrentUserRequest(), timeout)

    async def change_password(
        self, current_password: str, new_password: str, *, timeout: float | None = None
    ) -> None:
        request = auth_pb2.ChangePasswordRequest(current_password=current_password, new_password=new_password)
        await self._call(self.stub.ChangePassword, request, timeout)

    def login(self, username: str, password: str, *, scope: str = "") -> PasswordTokenSource:
        """A token source for this user; also becomes this client's own token source.

        No call is made yet: the first call that needs a token performs the password grant.
        """
        self.tokens = PasswordTokenSource(self, username, password, scope=scope)
        return self.tokens

    def service_account(
        self, client_id: str, client_secret: str, *, scope: str = ""
    ) -> ClientCredentialsTokenSource:
        """A token source for a service account; also becomes this client's own token source."""
        self.tokens = ClientCredentialsTokenSource(self, client_id, client_secret, scope=scope)
        return self.tokens
