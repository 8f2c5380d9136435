"""Refund risk scoring and risk profiles"""
