"""Nerve's event catalog: typed Inngest events, function references, JSON Schemas"""
