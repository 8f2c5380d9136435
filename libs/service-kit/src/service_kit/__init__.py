"""What every Nerve service shares: settings, Inngest client and FastAPI app factories, system
of record, audit log, logging."""
