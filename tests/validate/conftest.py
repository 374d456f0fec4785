"""The integration fixtures (registry, base image, content store) for the validate tests."""

from __future__ import annotations

from tests.integration.conftest import base_image, gen_cas, registry, tools

__all__ = ["base_image", "gen_cas", "registry", "tools"]
