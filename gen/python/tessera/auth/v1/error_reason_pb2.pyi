from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class AuthErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTH_ERROR_REASON_UNSPECIFIED: _ClassVar[AuthErrorReason]
    AUTH_ERROR_REASON_INVALID_REQUEST: _ClassVar[AuthErrorReason]
    AUTH_ERROR_REASON_INVALID_GRANT: _ClassVar[AuthErrorReason]
    AUTH_ERROR_REASON_INVALID_CLIENT: _ClassVar[AuthErrorReason]
    AUTH_ERROR_REASON_INVALID_SCOPE: _ClassVar[AuthErrorReason]
    AUTH_ERROR_REASON_TOO_MANY_ATTEMPTS: _ClassVar[AuthErrorReason]
    AUTH_ERROR_REASON_EMAIL_TAKEN: _ClassVar[AuthErrorReason]
    AUTH_ERROR_REASON_USER_TOKEN_REQUIRED: _ClassVar[AuthErrorReason]
    AUTH_ERROR_REASON_USER_NOT_FOUND: _ClassVar[AuthErrorReason]
AUTH_ERROR_REASON_UNSPECIFIED: AuthErrorReason
AUTH_ERROR_REASON_INVALID_REQUEST: AuthErrorReason
AUTH_ERROR_REASON_INVALID_GRANT: AuthErrorReason
AUTH_ERROR_REASON_INVALID_CLIENT: AuthErrorReason
AUTH_ERROR_REASON_INVALID_SCOPE: AuthErrorReason
AUTH_ERROR_REASON_TOO_MANY_ATTEMPTS: AuthErrorReason
AUTH_ERROR_REASON_EMAIL_TAKEN: AuthErrorReason
AUTH_ERROR_REASON_USER_TOKEN_REQUIRED: AuthErrorReason
AUTH_ERROR_REASON_USER_NOT_FOUND: AuthErrorReason
