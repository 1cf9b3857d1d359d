"""What syncd decides, apart from how it runs: records and changes, validation, the plan, the guard,
the working-day calendar, escalation, the Article 9 figures, and the ports (`source`, `target`) that
connectors fill. Nothing here imports `syncd.engine` or a connector."""
