"""Alembic migrations and seed data for Nerve's system of record"""
