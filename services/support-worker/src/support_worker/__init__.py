"""The customer-support agent and its durable flows"""
