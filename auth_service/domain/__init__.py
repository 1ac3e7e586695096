"""Entities, value objects and domain errors; imports neither grpc nor SQLAlchemy."""
