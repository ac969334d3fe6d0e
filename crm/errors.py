"""The exceptions crm raises. Each carries a message written for the person using the app."""


class CRMError(Exception):
    """Base class: str(error) is a plain-English message safe to show to the user."""


class ValidationError(CRMError):
    """A field's value was refused; ``field`` names it as the form labels it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class InvalidFields(CRMError):
    """Several fields were refused at once; ``errors`` holds each one."""

    def __init__(self, errors: list[ValidationError]):
        super().__init__(" ".join(str(e) for e in errors))
        self.errors = errors


class InvalidPhone(ValidationError):
    """A phone number that phonenumbers does not accept as a valid UK number."""


class InvalidEmail(ValidationError):
    """An email address whose syntax is wrong."""


class NotFound(CRMError):
    """The record does not exist, or is outside the acting user's scope (indistinguishable on purpose)."""


class PermissionDenied(CRMError):
    """The acting user's role or scope does not allow this action."""


class Conflict(CRMError):
    """Someone else saved the record after it was opened; saving now would overwrite their change."""


class AlreadyExists(CRMError):
    """A unique name or code is already taken."""


class DuplicateContact(CRMError):
    """The new contact looks like one the branch already has; ``matches`` lists those contacts."""

    def __init__(self, matches: list[dict]):
        names = ", ".join(m["name"] for m in matches)
        super().__init__(f"This looks like a contact the branch already has: {names}.")
        self.matches = matches


class SignInFailed(CRMError):
    """Wrong user name or password, a locked account, or a disabled one."""


class SessionEnded(CRMError):
    """A signed-in session is no longer valid (idle too long, signed out elsewhere, account disabled)."""


class PossibleClientData(ValidationError):
    """Free text that looks like it holds a service user's NHS number; saved only once the user confirms."""
