"""Base class of every contract model: unknown fields are errors, so a typo never passes silently."""
from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """Strict pydantic base: extra fields forbidden, values validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
