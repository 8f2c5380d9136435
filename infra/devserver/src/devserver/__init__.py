"""A pure-Python, Inngest-compatible dev server: the embedded default engine"""
