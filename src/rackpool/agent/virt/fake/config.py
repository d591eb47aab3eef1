"""Settings of the in-memory ``fake`` virt driver."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vcpus: int = Field(10_000, ge=1)
    ram_mb: int = Field(10_000_000, ge=1)
    disk_gb: int = Field(1_000_000, ge=1)
    fail_images: list[str] = Field(
        default_factory=list, description="image names whose spawn fails (for error tests)"
    )
    boot_seconds: float = Field(
        0.0, ge=0, le=3600, description="how long a spawn takes (a slow boot, for tests)"
    )
