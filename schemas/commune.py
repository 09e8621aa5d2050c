"""The commune registry's record: who may publish, and where notices belong."""

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from schemas.versions import BUS_MODEL

# INSEE code of a commune: five characters, digits except Corsica's 2A/2B prefix.
INSEE_PATTERN = r"^(?:\d{5}|2[AB]\d{3})$"
INSEE_RE = re.compile(INSEE_PATTERN)

Insee = Annotated[
    str,
    StringConstraints(pattern=INSEE_PATTERN),
    Field(description="INSEE code of the commune, e.g. 70299 or 2A004", examples=["70299"]),
]


class CommuneSettings(BaseModel):
    """Per-commune options; each channel adds its own as it lands."""

    model_config = BUS_MODEL

    website: str | None = Field(default=None, max_length=300)
    # Categories (slugs, e.g. "alerte") whose notices go out only once a second member of
    # staff approves them; set with `crieur commune approval`.
    approval_required_for: tuple[str, ...] = ()


class Commune(BaseModel):
    """A commune registered in Crieur (bucket `communes`, key = INSEE code)."""

    model_config = BUS_MODEL

    schema_version: int = Field(default=1, ge=1)
    insee: Insee
    name: str = Field(min_length=1, max_length=100)
    settings: CommuneSettings = CommuneSettings()
    created_at: datetime
