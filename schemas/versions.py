"""Reading bus messages across versions: tolerant of new fields, careful with new versions.

A bus model's `schema_version` default is the newest version this build can read. A
writer adds fields freely (readers ignore what they do not know: `extra="ignore"`); only a
breaking change bumps `schema_version`, and a reader meeting a version above its own skips
that message (`NewerSchemaVersion`) instead of misreading it.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict

M = TypeVar("M", bound=BaseModel)

# Every model that travels on the bus or sits in a bucket: frozen, and tolerant of fields a
# newer writer added. What staff send over HTTP stays strict (extra="forbid").
BUS_MODEL = ConfigDict(frozen=True, extra="ignore")


class NewerSchemaVersion(ValueError):
    """A message written for a version of the contract this build cannot read."""

    def __init__(self, what: str, version: int, readable: int) -> None:
        super().__init__(f"{what} has schema_version {version}; this build reads up to "
                         f"{readable}: skipped until this service is upgraded")
        self.version = version
        self.readable = readable


class _Versioned(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: int = 1


def check_version(data: bytes | str, readable: int, what: str) -> None:
    """Raise NewerSchemaVersion if `data` is written for a newer contract than `readable`.

    Raises pydantic.ValidationError if `data` is not a JSON object at all.
    """
    version = _Versioned.model_validate_json(data).schema_version
    if version > readable:
        raise NewerSchemaVersion(what, version, readable)


def readable_version(model: type[BaseModel]) -> int | None:
    field = model.model_fields.get("schema_version")
    return None if field is None else int(field.default)


def read_message(model: type[M], data: bytes | str) -> M:
    """Parse a bus message or bucket entry as `model`, refusing versions it cannot read."""
    readable = readable_version(model)
    if readable is not None:
        check_version(data, readable, model.__name__)
    # extra="ignore" here reaches nested models that are strict for staff input (links).
    return model.model_validate_json(data, extra="ignore")
