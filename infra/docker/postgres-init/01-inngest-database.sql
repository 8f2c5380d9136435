-- Inngest keeps its own state in its own database on the same server (compose only).
CREATE DATABASE inngest;
