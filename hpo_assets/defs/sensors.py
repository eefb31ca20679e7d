"""Sensors of the code location (none yet; a sensor added here goes into SENSORS)."""

from __future__ import annotations

import dagster as dg

SENSORS: list[dg.SensorDefinition] = []
