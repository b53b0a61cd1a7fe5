"""Jobs: a fair queue across clients, cancellation, and running one job (imaging -> engine -> frames)."""
