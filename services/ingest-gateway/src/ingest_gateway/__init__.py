"""Webhooks in, validated, stored, typed events out"""
