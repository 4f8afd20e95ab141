"""Layer 2 of otgen: penalised-OT generative models (imports otgen.ot only)."""
