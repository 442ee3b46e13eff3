"""Numerai's scores and general statistics: pure functions of arrays, no models."""
