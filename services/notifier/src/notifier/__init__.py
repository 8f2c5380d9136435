"""Slack / email / local sinks: reviewer pings, approval requests, alerts"""
