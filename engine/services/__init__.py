"""Use cases: one function each, taking plain values and a unit of work, committing once."""
