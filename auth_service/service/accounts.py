"""What a signed-in user does with their own account: read it, change the password."""

from __future__ import annotations

import uuid

from auth_service.domain.errors import InvalidRequest, UserNotFound, UserTokenRequired
from auth_service.domain.passwords import MAX_PASSWORD_LENGTH, PasswordPolicy
from auth_service.domain.throttle import DEFAULT_THROTTLE, AttemptKind, ThrottlePolicy
from auth_service.domain.tokens import USER_CLIENT_ID
from auth_service.domain.users import User
from auth_service.service.ports import AuthUnitOfWork, Caller, Clock, PasswordHasher, UnitOfWorkFactory
from auth_service.service.throttling import reserve_attempts
from shared.errors import FieldViolation
from shared.tokens import InvalidToken


class Accounts:
    """GetCurrentUser and ChangePassword."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        clock: Clock,
        throttle: ThrottlePolicy = DEFAULT_THROTTLE,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._policy = policy
        self._clock = clock
        self._throttle = throttle

    async def current_user(self, caller: Caller) -> User:
        """The user the caller's token was issued to.

        A service account's token has no user (`UserTokenRequired`); a token revoked through
        RevokeToken is refused here at once, since this service knows about revocations.
        """
        user_id = _user_id_of(caller)
        async with self._uow() as uow:
            return await _user_of(uow, caller, user_id)

    async def change_password(self, caller: Caller, *, current_password: str, new_password: str) -> None:
        """Replace the password after checking the current one, and revoke every refresh token.

        Wrong current passwords count against the account's brute-force limit like failed logins, so a
        stolen access token cannot be used to guess the password.
        """
        violations: list[FieldViolation] = []
        if not current_password:
            violations.append(FieldViolation("current_password", "is required"))
        elif len(current_password) > MAX_PASSWORD_LENGTH:
            violations.append(FieldViolation("current_password", "does not match"))
        problem = self._policy.problem(new_password)
        if problem is not None:
            violations.append(FieldViolation("new_password", problem))
        elif new_password == current_password:
            violations.append(FieldViolation("new_password", "must differ from the current password"))
        if violations:
            raise InvalidRequest(violations)
        user_id = _user_id_of(caller)
        async with self._uow() as uow:
            user = await _user_of(uow, caller, user_id)
            account = (AttemptKind.ACCOUNT, user.email)
            await reserve_attempts(uow, self._throttle, [account], self._clock())
            await uow.commit()
        check = await self._hasher.verify(user.password_hash, current_password)
        if not check.matches:
            raise InvalidRequest([FieldViolation("current_password", "does not match")])
        new_hash = await self._hasher.hash(new_password)
        async with self._uow() as uow:
            now = self._clock()
            await uow.login_attempts.reset(*account)
            if not await uow.users.replace_password_hash(user.id, user.password_hash, new_hash, now):
                # Another ChangePassword won in between; ours was checked against a stale password.
                raise InvalidRequest([FieldViolation("current_password", "does not match")])
            await uow.refresh_tokens.revoke_all_of_user(user.id, now)
            await uow.commit()


def _user_id_of(caller: Caller) -> uuid.UUID:
    if caller.client_id != USER_CLIENT_ID:
        raise UserTokenRequired()
    try:
        return uuid.UUID(caller.subject)
    except ValueError:
        raise UserNotFound() from None


async def _user_of(uow: AuthUnitOfWork, caller: Caller, user_id: uuid.UUID) -> User:
    if await uow.revoked_access_tokens.is_revoked(caller.token_id):
        raise InvalidToken("revoked")
    user = await uow.users.get(user_id)
    if user is None:
        raise UserNotFound()
    return user
