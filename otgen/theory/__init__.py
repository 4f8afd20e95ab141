"""Layer 3 of otgen: numerical checks of the theory against exact OT."""
