"""Errors the service answers with: {"error": {"code", "message"}} and an HTTP status."""
from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def as_dict(self) -> dict:
        return {"__error__": {"status": self.status, "code": self.code, "message": self.message}}

    @classmethod
    def unwrap(cls, value):
        """Owner calls return errors as values (exceptions do not cross Ray cleanly); raise them here."""
        if isinstance(value, dict) and "__error__" in value:
            e = value["__error__"]
            raise cls(e["status"], e["code"], e["message"])
        return value


def not_found(name: str) -> ServiceError:
    return ServiceError(404, "not_found", f"experiment {name!r} does not exist")
