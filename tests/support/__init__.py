"""Test helpers: real databases, real servers, status-detail decoding."""
